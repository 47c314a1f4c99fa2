output "pipeline_name" {
  description = "Name of the example pipeline; start it after uploading the source."
  value       = aws_codepipeline.this.name
}

output "source_bucket" {
  description = "Bucket to upload the source zip to."
  value       = aws_s3_bucket.source.bucket
}

output "source_key" {
  description = "Key the pipeline's source stage reads."
  value       = local.source_key
}

output "repository_url" {
  description = "ECR repository the build pushes to (tag: the pipeline execution id)."
  value       = aws_ecr_repository.app.repository_url
}

output "image_id" {
  description = "AMI the builds run on: image_id, the AMI ID read from image_id_parameter_name at this plan, or the latest Amazon Windows Server 2022 with Containers AMI."
  value       = local.image_id
}

output "capacity" {
  description = "How the action gets its builders: strategy, ready instances kept (min_ready), hibernation, idle minutes before a burst instance is retired, the cap on instances, and the builders' instance type and root volume."
  value = {
    strategy              = var.capacity_strategy
    min_ready             = var.pool_min_ready
    hibernate             = var.pool_hibernate
    max_idle_minutes      = var.pool_max_idle_minutes
    max_concurrent_builds = var.max_concurrent_builds
    instance_type         = var.instance_type
    root_volume_size_gib  = var.root_volume_size_gib
  }
}

output "build_log_group_name" {
  description = "Log group with every build's full output."
  value       = module.ec2_action.build_log_group_name
}

output "run_commands" {
  description = "PowerShell commands that upload the sample source and start the pipeline."
  value       = <<-EOT
    Compress-Archive -Path source\* -DestinationPath source.zip -Force
    aws s3 cp source.zip s3://${aws_s3_bucket.source.bucket}/${local.source_key} --region ${var.region}
    aws codepipeline start-pipeline-execution --name ${aws_codepipeline.this.name} --region ${var.region}
  EOT
}
