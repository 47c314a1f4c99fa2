output "action_type_ids" {
  description = "IDs of the custom action types of each action's current `version`, keyed like var.actions."
  value       = module.action_type.ids
}

output "action_types" {
  description = "The `{category, owner, provider, version}` to put in a pipeline's action declaration (the current `version`), keyed like var.actions. It depends on the functions, so a pipeline that takes its version from here moves to a new version only after the poller serves it."
  value       = module.action_type.action_types
  depends_on  = [module.orchestrator]

  # Here rather than in var.actions' validation: before Terraform 1.9 a validation cannot read another variable.
  precondition {
    condition     = length(local.disallowed_instance_types) == 0
    error_message = "Every type in an action's instance_types must match one of allowed_instance_types (${join(", ", var.allowed_instance_types)}); these do not: ${join(", ", local.disallowed_instance_types)}."
  }
}

output "served_action_types" {
  description = "Every registered and served version of each action, as `{category, owner, provider, version}`, keyed like var.actions: the current `version` first, then previous_versions."
  value       = module.action_type.served_action_types
}

output "state_machine_arn" {
  description = "ARN of the Step Functions state machine that runs one job per execution (the action's Details link opens an execution)."
  value       = module.orchestrator.state_machine_arn
}

output "lambda_function_names" {
  description = "Names of the Lambda functions, keyed by function (poll, acquire, wait_online, run_command, command_event, release, report, reap, enqueue, keeper, interruption)."
  value       = module.orchestrator.function_names
}

output "reaper_function_name" {
  description = "Name of the reaper function (runs on reaper_schedule_expression; invoke it with {} for a pass at once)."
  value       = module.orchestrator.reaper_function_name
}

output "pool_keeper_function_name" {
  description = "Name of the pool keeper function (runs on pool_keeper_schedule_expression; invoke it with {} for a pass at once)."
  value       = module.orchestrator.keeper_function_name
}

output "alarm_names" {
  description = "Names of the module's CloudWatch alarms, keyed by alarm: reaped_instances, executions_timed_out, executions_aborted, <function>_errors, and per action <action>_queue_wait, <action>_capacity_errors and, for a pool with a minimum, <action>_pool_shortfall."
  value       = module.observability.alarm_names
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard, or null when dashboard_enabled is false."
  value       = module.observability.dashboard_name
}

output "dashboard_url" {
  description = "Console address of the CloudWatch dashboard, or null when dashboard_enabled is false."
  value       = module.observability.dashboard_url
}

output "lambda_role_arns" {
  description = "ARNs of the Lambda functions' IAM roles, keyed by function."
  value       = module.orchestrator.lambda_role_arns
}

output "state_machine_role_arn" {
  description = "ARN of the state machine's IAM role."
  value       = module.orchestrator.state_machine_role_arn
}

output "builder_role_arn" {
  description = "ARN of the builder instances' IAM role (attach further policies to its name, builder_role_name)."
  value       = module.builder.role_arn
}

output "builder_role_name" {
  description = "Name of the builder instances' IAM role."
  value       = module.builder.role_name
}

output "builder_instance_profile_name" {
  description = "Name of the builder instances' instance profile."
  value       = module.builder.instance_profile_name
}

output "builder_instance_profile_arn" {
  description = "ARN of the builder instances' instance profile."
  value       = module.builder.instance_profile_arn
}

output "builder_security_group_id" {
  description = "ID of the builders' security group (no ingress); allow it as a source where builds must connect, e.g. VPC endpoints."
  value       = module.builder.security_group_id
}

output "launch_template_id" {
  description = "ID of the Linux builders' launch template (launch_template_ids has both platforms')."
  value       = module.builder.launch_template_id
}

output "launch_template_ids" {
  description = "IDs of the builders' launch templates, keyed by platform (Linux, Windows)."
  value       = { for platform, template in module.builder.launch_templates : platform => template.id }
}

output "ssm_document_name" {
  description = "Name of the SSM document that runs builds (filter Run Command history by it)."
  value       = module.ssm_document.document_name
}

output "ssm_document_arn" {
  description = "ARN of the SSM document that runs builds."
  value       = module.ssm_document.document_arn
}

output "build_log_group_name" {
  description = "Log group receiving every build's output (one stream per command and step)."
  value       = module.ssm_document.build_log_group_name
}

output "log_group_names" {
  description = "Log groups of the Lambda functions (keyed by function), of the state machine (`state_machine`) and of the builds (`builds`)."
  value       = merge(module.orchestrator.log_group_names, { builds = module.ssm_document.build_log_group_name })
}

output "jobs_table_name" {
  description = "Name of the DynamoDB table tracking jobs."
  value       = module.orchestrator.jobs_table_name
}

output "pool_table_name" {
  description = "Name of the DynamoDB registry table of instances, leases and the capacity queue (one partition per action, one per action's queue)."
  value       = module.orchestrator.pool_table_name
}
