# The alarms an operator needs, each with a description that says where to look first:
# - a leak: instances the reaper had to terminate;
# - jobs stuck: a job waiting in an action's capacity queue too long, a pool that cannot reach its minimum, EC2
#   refusing an action's launches for lack of capacity period after period;
# - something broken: functions failing where failing is never part of the normal flow (e.g. the poller crashing on
#   every run), executions that timed out or were aborted. Failed executions are not alarmed: builds fail legitimately.
#
# acquire, wait_online and run_command get no Errors alarm: they raise when a build cannot go on for a reason the job's
# answer explains (invalid job configuration, no capacity, a builder that never registers or goes away), which the
# state machine retries or reports. Waiting is never an error: on a healthy day every function's Errors metric is 0.
# These alarms were in modules/orchestrator until the metrics catalogue came; the root module's `moved` block keeps
# their addresses.

locals {
  alarm_period_seconds       = 300
  functions_with_flow_errors = ["acquire", "wait_online", "run_command"]

  # The reaper terminates an instance it marked at least one interval earlier; its alarm sums over that interval.
  reaper_rate             = regex("^rate\\(([0-9]+) (minute|hour)s?\\)$", var.reaper_schedule_expression)
  reaper_interval_seconds = tonumber(local.reaper_rate[0]) * (local.reaper_rate[1] == "hour" ? 3600 : 60)

  keeper_log_group = "/aws/lambda/${lookup(var.function_names, "keeper", "${var.name_prefix}-keeper")}"

  # Defaults of an alarm: one period, Sum >= 1 (a count that should stay 0).
  alarm_defaults = {
    statistic = "Sum", evaluation_periods = 1, threshold = 1, comparison = "GreaterThanOrEqualToThreshold", query = null
  }

  alarms = merge(
    {
      reaped_instances = merge(local.alarm_defaults, {
        description = "The reaper terminated builder instances that no live job or pool owned (orphaned, unknown or overdue). Look first at its log group /aws/lambda/${lookup(var.function_names, "reap", "${var.name_prefix}-reap")}: it names each instance and why; then at the release function's errors."
        namespace   = var.metrics_namespace
        metric      = "ReapedInstances"
        dimensions  = { Stack = var.name_prefix }
        period      = local.reaper_interval_seconds
      })
    },
    {
      for key, execution in {
        executions_timed_out = { metric = "ExecutionsTimedOut", what = "timed out" }
        executions_aborted   = { metric = "ExecutionsAborted", what = "was aborted (the reaper fails its CodePipeline job)" }
        } : key => merge(local.alarm_defaults, {
          description = "A ${var.name_prefix}-job execution ${execution.what}. Look first at the execution's history in the Step Functions console (the state it stopped in), then at that state's function log."
          namespace   = "AWS/States"
          metric      = execution.metric
          dimensions  = { StateMachineArn = var.state_machine_arn }
          period      = local.alarm_period_seconds
      })
    },
    {
      for key, name in var.function_names : "${key}_errors" => merge(local.alarm_defaults, {
        description = "The ${name} function failed. Look first at its log group /aws/lambda/${name}: the error line says why."
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        dimensions  = { FunctionName = name }
        period      = local.alarm_period_seconds
      }) if !contains(local.functions_with_flow_errors, key)
    },
    {
      for key in keys(var.actions) : "${key}_queue_wait" => merge(local.alarm_defaults, {
        description = "A ${key} job has waited more than ${var.queue_wait_alarm_minutes} minutes in the action's capacity queue. Look first at the dashboard's pool and queue widgets: all of max_concurrent_builds busy (raise it) or instances that cannot launch (the capacity-errors widget, the keeper's log group ${local.keeper_log_group})."
        namespace   = var.metrics_namespace
        metric      = "OldestQueuedSeconds"
        dimensions  = { Stack = var.name_prefix, Action = key }
        statistic   = "Maximum"
        period      = local.alarm_period_seconds
        threshold   = var.queue_wait_alarm_minutes * 60
        comparison  = "GreaterThanThreshold"
      })
    },
    {
      for key, action in var.actions : "${key}_pool_shortfall" => merge(local.alarm_defaults, {
        description        = "The ${key} pool has stayed below its minimum of ready instances for ${var.pool_shortfall_alarm_minutes} minutes. Look first at the dashboard's capacity-errors widget (EC2 has none of its instance types in its zones), then at the keeper's log group ${local.keeper_log_group} (launches failing, instances retired as unhealthy)."
        namespace          = var.metrics_namespace
        metric             = "MissingReadyInstances"
        dimensions         = { Stack = var.name_prefix, Action = key }
        statistic          = "Minimum"
        period             = local.alarm_period_seconds
        evaluation_periods = var.pool_shortfall_alarm_minutes * 60 / local.alarm_period_seconds
        threshold          = 0
        comparison         = "GreaterThanThreshold"
      }) if action.keeps_ready_instances
    },
    {
      # CapacityErrors carries InstanceType and AvailabilityZone: a Metrics Insights query sums them per action.
      for key in keys(var.actions) : "${key}_capacity_errors" => merge(local.alarm_defaults, {
        description        = "EC2 refused ${key}'s launches for lack of capacity in ${var.capacity_error_alarm_periods} consecutive 5-minute periods. Look first at the dashboard's capacity-errors widget (which instance types and zones), then widen the action's instance_types or add subnets in other zones."
        namespace          = null
        metric             = "CapacityErrors"
        dimensions         = {}
        period             = local.alarm_period_seconds
        evaluation_periods = var.capacity_error_alarm_periods
        threshold          = 0
        comparison         = "GreaterThanThreshold"
        query = format(
          "SELECT SUM(CapacityErrors) FROM SCHEMA(\"%s\", %s) WHERE Stack = '%s' AND Action = '%s'",
          var.metrics_namespace, join(", ", sort(local.metric_dimensions["CapacityErrors"])), var.name_prefix, key
        )
      })
    },
  )

  # Alarms on the module's own metrics, whose names must be in the catalogue (a renamed metric fails the plan).
  unknown_alarm_metrics = sort(distinct([
    for alarm in values(local.alarms) : alarm.metric
    if(alarm.namespace == var.metrics_namespace || alarm.query != null) && !contains(keys(local.catalogue.metrics), alarm.metric)
  ]))
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = each.value.query == null ? each.value.namespace : null
  metric_name         = each.value.query == null ? each.value.metric : null
  dimensions          = each.value.query == null ? each.value.dimensions : null
  statistic           = each.value.query == null ? each.value.statistic : null
  period              = each.value.query == null ? each.value.period : null
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.evaluation_periods > 1 ? each.value.evaluation_periods : null
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags

  dynamic "metric_query" {
    for_each = each.value.query == null ? [] : [each.value.query]
    content {
      id          = "q"
      expression  = metric_query.value
      period      = each.value.period
      return_data = true
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.unknown_alarm_metrics) == 0
      error_message = "Alarms watch metrics that modules/observability/metrics.json does not list: ${join(", ", local.unknown_alarm_metrics)}."
    }
  }
}
