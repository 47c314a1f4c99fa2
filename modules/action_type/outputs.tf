output "ids" {
  description = "Action type IDs, keyed like var.actions."
  value       = { for key, action in aws_codepipeline_custom_action_type.this : key => action.id }
}

output "action_types" {
  description = "What a pipeline's action declaration needs (category, owner, provider, version), keyed like var.actions."
  value = {
    for key, action in aws_codepipeline_custom_action_type.this : key => {
      category = action.category
      owner    = "Custom"
      provider = action.provider_name
      version  = action.version
    }
  }
}
