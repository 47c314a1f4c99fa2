output "name_prefix" {
  description = "The module's name prefix (also the ec2-action:stack tag of builder instances)."
  value       = var.name_prefix
}

output "pipeline_name" {
  description = "Name of the example pipeline; start it after uploading the source."
  value       = aws_codepipeline.this.name
}

output "pipeline_role_arn" {
  description = "ARN of the pipeline's service role (reusable for further pipelines on the same buckets)."
  value       = aws_iam_role.pipeline.arn
}

output "source_bucket" {
  description = "Bucket to upload the source zip to."
  value       = aws_s3_bucket.source.bucket
}

output "source_key" {
  description = "Key the pipeline's source stage reads."
  value       = local.source_key
}

output "artifact_bucket" {
  description = "The pipeline's artifact store; the build's output artifact lands here."
  value       = aws_s3_bucket.artifacts.bucket
}

output "artifact_kms_key_arn" {
  description = "KMS key encrypting the artifacts and the source."
  value       = aws_kms_key.artifacts.arn
}

output "image_id" {
  description = "AMI the builds run on by default."
  value       = local.image_id
}

output "action_type_id" {
  description = "The custom action's category, owner, provider and version, as a pipeline's action declaration needs them."
  value       = module.ec2_action.action_types.linux
}

output "served_action_type_ids" {
  description = "Every registered and served version of the custom action (the current one first), for pipelines pinned to an older version."
  value       = module.ec2_action.served_action_types.linux
}

output "state_machine_arn" {
  description = "Step Functions state machine running one execution per job."
  value       = module.ec2_action.state_machine_arn
}

output "poll_function_name" {
  description = "The poll Lambda (invoke it with {} to sweep at once)."
  value       = module.ec2_action.lambda_function_names.poll
}

output "reaper_function_name" {
  description = "The reaper Lambda (invoke it with {} for a reaper pass at once)."
  value       = module.ec2_action.reaper_function_name
}

output "document_name" {
  description = "SSM document that runs the builds."
  value       = module.ec2_action.ssm_document_name
}

output "build_log_group_name" {
  description = "Log group with every build's full output."
  value       = module.ec2_action.build_log_group_name
}

output "run_commands" {
  description = "Shell commands that upload the sample source and start the pipeline."
  value       = <<-EOT
    (cd source && zip -qr ../source.zip .)
    aws s3 cp source.zip s3://${aws_s3_bucket.source.bucket}/${local.source_key} --region ${var.region}
    aws codepipeline start-pipeline-execution --name ${aws_codepipeline.this.name} --region ${var.region}
  EOT
}

output "pool_table_name" {
  description = "The registry table of the action's instances, counters and capacity queue (hash key pool, range key id)."
  value       = module.ec2_action.pool_table_name
}

output "pool_keeper_function_name" {
  description = "The pool keeper Lambda (invoke it with {} for a pass at once: the queue served, the pool kept at its minimum)."
  value       = module.ec2_action.pool_keeper_function_name
}
