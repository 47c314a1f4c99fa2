# Alarms an operator needs: instances the reaper had to terminate (something leaks builders), functions that fail
# where failing is never part of the normal flow (e.g. the poller crashing on every run), and executions that timed
# out or were aborted. Failed executions are not alarmed: builds fail legitimately.
#
# acquire, wait_online and run_command get no Errors alarm: they raise when a build cannot go on for a reason the job's
# answer explains (invalid job configuration, no capacity, a builder that never registers or goes away), which the
# state machine retries or reports. Waiting is never an error: on a healthy day every function's Errors metric is 0.

locals {
  # The reaper's metric namespace (METRIC_NAMESPACE in lambda_src/ec2_action/handlers/reap.py, kept equal by
  # tests/test_shared_constants.py).
  metric_namespace           = "CodePipelineEc2Action"
  alarm_period_seconds       = 300
  functions_with_flow_errors = ["acquire", "wait_online", "run_command"]

  alarms = merge(
    {
      reaped_instances = {
        description = "The reaper terminated builder instances that no live job owned (orphaned, unknown or overdue). Its log says which and why."
        namespace   = local.metric_namespace
        metric      = "ReapedInstances"
        dimensions  = { Stack = var.name_prefix }
        period      = local.reaper_interval_seconds
      }
    },
    {
      for key, execution in {
        executions_timed_out = { metric = "ExecutionsTimedOut", what = "timed out" }
        executions_aborted   = { metric = "ExecutionsAborted", what = "was aborted (the reaper fails its CodePipeline job)" }
        } : key => {
        description = "A ${var.name_prefix}-job execution ${execution.what}."
        namespace   = "AWS/States"
        metric      = execution.metric
        dimensions  = { StateMachineArn = local.state_machine_arn }
        period      = local.alarm_period_seconds
      }
    },
    {
      for key in keys(local.functions) : "${key}_errors" => {
        description = "The ${local.function_names[key]} function failed; its log group /aws/lambda/${local.function_names[key]} says why."
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        dimensions  = { FunctionName = local.function_names[key] }
        period      = local.alarm_period_seconds
      } if !contains(local.functions_with_flow_errors, key)
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = "Sum"
  period              = each.value.period
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
