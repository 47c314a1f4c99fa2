output "ids" {
  description = "IDs of the current version's action types, keyed like var.actions."
  value       = { for key, action in var.actions : key => aws_codepipeline_custom_action_type.this["${key}/${action.version}"].id }
}

output "action_types" {
  description = "What a pipeline's action declaration needs (category, owner, provider, version) for the current version, keyed like var.actions."
  value       = { for key, types in local.served_action_types : key => types[0] }
}

output "served_action_types" {
  description = "The action type ids of every served version (category, owner, provider, version), keyed like var.actions: the current version first, then previous_versions in order."
  value       = local.served_action_types
}
