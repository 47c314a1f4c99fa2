output "state_machine_arn" {
  description = "ARN of the state machine running one job per execution."
  value       = aws_sfn_state_machine.job.arn
}

output "state_machine_role_arn" {
  description = "ARN of the state machine's IAM role."
  value       = aws_iam_role.state_machine.arn
}

output "function_names" {
  description = "Lambda function names, keyed by function (poll, acquire, wait_online, run_command, command_event, release, report, reap, enqueue, keeper, interruption)."
  value       = { for key, function in aws_lambda_function.this : key => function.function_name }
}

output "function_arns" {
  description = "Lambda function ARNs, keyed by function."
  value       = { for key, function in aws_lambda_function.this : key => function.arn }
}

output "lambda_role_arns" {
  description = "ARNs of the functions' IAM roles, keyed by function."
  value       = { for key, role in aws_iam_role.lambda : key => role.arn }
}

output "lambda_policies" {
  description = "The functions' inline IAM policies (JSON), keyed by function: for review and tests."
  value       = local.lambda_policies
}

output "lambda_config_json" {
  description = "The EC2_ACTION_CONFIG value every function receives."
  value       = local.config_json
}

output "log_group_names" {
  description = "Log groups of the functions (keyed by function) and of the state machine (key `state_machine`)."
  value = merge(
    { for key, group in aws_cloudwatch_log_group.lambda : key => group.name },
    { state_machine = aws_cloudwatch_log_group.state_machine.name },
  )
}

output "jobs_table_name" {
  description = "Name of the DynamoDB jobs table."
  value       = aws_dynamodb_table.jobs.name
}

output "jobs_table_arn" {
  description = "ARN of the DynamoDB jobs table."
  value       = aws_dynamodb_table.jobs.arn
}

output "reaper_function_name" {
  description = "Name of the reaper function (scheduled; invoke it with {} for a pass at once)."
  value       = aws_lambda_function.this["reap"].function_name
}

output "pool_table_name" {
  description = "Name of the DynamoDB registry table of instances, leases and the capacity queue."
  value       = aws_dynamodb_table.pool.name
}

output "pool_table_arn" {
  description = "ARN of the DynamoDB registry table of instances, leases and the capacity queue."
  value       = aws_dynamodb_table.pool.arn
}

output "keeper_function_name" {
  description = "Name of the pool keeper function (scheduled; invoke it with {} for a pass at once)."
  value       = aws_lambda_function.this["keeper"].function_name
}
