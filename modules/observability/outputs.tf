output "dashboard_name" {
  description = "Name of the CloudWatch dashboard, or null when dashboard_enabled is false."
  value       = one(aws_cloudwatch_dashboard.this[*].dashboard_name)
}

output "dashboard_url" {
  description = "Console address of the dashboard (the partition's console), or null when dashboard_enabled is false."
  value       = var.dashboard_enabled ? local.dashboard_url : null
}

output "dashboard_body" {
  description = "The dashboard's JSON, also when dashboard_enabled is false: for review and tests."
  value       = local.dashboard_body
}

output "alarm_names" {
  description = "CloudWatch alarm names, keyed by alarm: reaped_instances, executions_timed_out, executions_aborted, <function>_errors, and per action <action>_queue_wait, <action>_capacity_errors and (pools with a minimum) <action>_pool_shortfall."
  value       = { for key, alarm in aws_cloudwatch_metric_alarm.this : key => alarm.alarm_name }
}

output "alarms" {
  description = "Each alarm's definition, keyed like alarm_names (metric, namespace, statistic, period, evaluation_periods, threshold, query): for review and tests."
  value       = { for key, alarm in local.alarms : key => { for name, value in alarm : name => value if name != "description" } }
}
