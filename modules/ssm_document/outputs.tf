output "document_name" {
  description = "Name of the SSM Command document that runs a build."
  value       = aws_ssm_document.run_build.name
}

output "document_arn" {
  description = "ARN of the SSM Command document that runs a build."
  value       = aws_ssm_document.run_build.arn
}

output "build_log_group_name" {
  description = "Name of the log group receiving build output."
  value       = aws_cloudwatch_log_group.builds.name
}

output "build_log_group_arn" {
  description = "ARN of the log group receiving build output."
  value       = aws_cloudwatch_log_group.builds.arn
}
