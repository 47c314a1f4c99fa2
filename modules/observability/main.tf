# The dashboard, built from one list of widgets (local.widgets) whose metric names are looked up in the catalogue,
# metrics.json: the same file the functions' metric emitter reads (lambda_src/build.py copies it into the code zip),
# so a metric renamed on one side only fails the plan here or the emitter's tests there.

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.id
  # The console of the partition, as the action types' links (modules/action_type).
  console_host = lookup({
    "aws-cn"     = "console.amazonaws.cn"
    "aws-us-gov" = "console.amazonaws-us-gov.com"
  }, data.aws_partition.current.partition, "console.aws.amazon.com")
  console = "https://${local.region}.${local.console_host}"

  catalogue = jsondecode(file("${path.module}/metrics.json"))
  # Each metric's one dimension set, as the emitter writes it: the catalogue's common dimensions (or the metric's
  # own `dimensions`) followed by its `extra_dimensions`.
  metric_dimensions = {
    for name, metric in local.catalogue.metrics : name => concat(try(metric.dimensions, local.catalogue.dimensions), try(metric.extra_dimensions, []))
  }
  # Catalogue metrics may opt out of the dashboard with "dashboard": false; every other one must be on it (tested).
  dashboard_metric_names = sort([for name, metric in local.catalogue.metrics : name if try(metric.dashboard, true)])

  dashboard_name = var.name_prefix
  dashboard_url  = "${local.console}/cloudwatch/home?region=${local.region}#dashboards/dashboard/${local.dashboard_name}"
  # The console's own escaping of a log group name in its address ("/" as $252F).
  build_log_group_url = "${local.console}/cloudwatch/home?region=${local.region}#logsV2:log-groups/log-group/${replace(var.build_log_group_name, "/", "$252F")}"
  state_machine_url   = "${local.console}/states/home?region=${local.region}#/statemachines/view/${var.state_machine_arn}"

  action_keys = sort(keys(var.actions))
  latency     = ["TimeToCommandSeconds", "QueueWaitSeconds", "AcquireSeconds", "BootSeconds", "OverheadSeconds"]

  # The dashboard, top to bottom (CloudWatch lays the widgets out in this order, two per row). `metrics` are the
  # catalogue's, drawn per action (one line each), per Stack, or, for a metric with extra dimensions, as a SEARCH
  # that draws one line per value; `aws_metrics` are AWS's own, as CloudWatch's metric arrays.
  widgets = [
    {
      title   = "Jobs finished, by result"
      stacked = true
      metrics = [{ name = "JobsFinished", stat = "Sum" }]
    },
    {
      title   = "Time from STARTED to command start, split (p50)"
      metrics = [for name in local.latency : { name = name, stat = "p50" }]
    },
    {
      title   = "Time from STARTED to command start, split (p90)"
      metrics = [for name in local.latency : { name = name, stat = "p90" }]
    },
    {
      title   = "Build duration (p50, p90)"
      metrics = [{ name = "BuildSeconds", stat = "p50" }, { name = "BuildSeconds", stat = "p90" }]
    },
    {
      title   = "Capacity queue: jobs waiting, oldest wait (seconds, right)"
      metrics = [{ name = "QueueDepth", stat = "Maximum" }, { name = "OldestQueuedSeconds", stat = "Maximum", right = true }]
    },
    {
      title   = "Pools: ready, leased, missing from the minimum"
      metrics = [for name in ["ReadyInstances", "LeasedInstances", "MissingReadyInstances"] : { name = name, stat = "Maximum" }]
    },
    {
      title   = "Capacity errors, by instance type and zone"
      stacked = true
      metrics = [{ name = "CapacityErrors", stat = "Sum" }]
    },
    {
      title   = "Builds restarted after a spot interruption"
      metrics = [{ name = "SpotRestarts", stat = "Sum" }]
    },
    {
      title   = "Instance-seconds, by purchase option"
      stacked = true
      metrics = [{ name = "InstanceSeconds", stat = "Sum" }]
    },
    {
      title   = "Instances reaped (a leak the reaper cleaned up)"
      metrics = [{ name = "ReapedInstances", stat = "Sum" }]
    },
    {
      title       = "Function errors"
      stacked     = true
      aws_metrics = [for key, name in var.function_names : ["AWS/Lambda", "Errors", "FunctionName", name, { stat = "Sum", label = key }]]
    },
    {
      title = "Executions failed, timed out, aborted"
      aws_metrics = [
        for metric in ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"] :
        ["AWS/States", metric, "StateMachineArn", var.state_machine_arn, { stat = "Sum" }]
      ]
    },
  ]

  widget_metric_names = distinct(flatten([for widget in local.widgets : [for metric in try(widget.metrics, []) : metric.name]]))
  unknown_metrics     = [for name in local.widget_metric_names : name if !contains(keys(local.catalogue.metrics), name)]

  # The catalogue metrics of each widget as CloudWatch metric lines: a SEARCH drawing one line per value of the
  # metric's extra dimensions, one line for a Stack-only metric, else one line per action. Unknown names are drawn
  # as Stack-only lines: the dashboard's precondition refuses them.
  searched = [
    for widget in local.widgets : [
      for metric in try(widget.metrics, []) : metric
      if length(setsubtract(try(local.metric_dimensions[metric.name], ["Stack"]), ["Stack", "Action"])) > 0
    ]
  ]
  per_stack = [
    for widget in local.widgets : [
      for metric in try(widget.metrics, []) : metric if try(local.metric_dimensions[metric.name], ["Stack"]) == ["Stack"]
    ]
  ]
  per_action = [
    for widget in local.widgets : flatten([
      for metric in try(widget.metrics, []) : [for key in local.action_keys : merge(metric, { action = key })]
      if try(local.metric_dimensions[metric.name], ["Stack"]) == ["Stack", "Action"]
    ])
  ]
  metric_lines = [
    for index, widget in local.widgets : concat(
      [
        for number, metric in local.searched[index] : [{
          id    = "e${number}"
          label = ""
          expression = format(
            "SEARCH('{\"%s\",%s} Stack=\"%s\" MetricName=\"%s\"', '%s', 300)",
            var.metrics_namespace, join(",", sort(local.metric_dimensions[metric.name])), var.name_prefix, metric.name, metric.stat
          )
        }]
      ],
      [
        for metric in local.per_stack[index] :
        [var.metrics_namespace, metric.name, "Stack", var.name_prefix, { stat = metric.stat, label = "${metric.name} ${metric.stat}" }]
      ],
      [
        for metric in local.per_action[index] : [
          var.metrics_namespace, metric.name, "Stack", var.name_prefix, "Action", metric.action,
          merge({ stat = metric.stat, label = "${metric.action} ${metric.name} ${metric.stat}" }, try(metric.right, false) ? { yAxis = "right" } : {})
        ]
      ],
    )
  ]

  links = join("\n", [
    "## ${var.name_prefix}: CodePipeline EC2 builds",
    "[Build output (log group ${var.build_log_group_name})](${local.build_log_group_url}) · [Jobs (state machine executions)](${local.state_machine_url})",
    "",
    "| Metric (${var.metrics_namespace}) | Meaning |",
    "| --- | --- |",
    join("\n", [for name in local.dashboard_metric_names : "| ${name} | ${try(local.catalogue.metrics[name].description, "")} |"]),
  ])

  dashboard_body = jsonencode({
    widgets = concat(
      [{ type = "text", width = 24, height = 8, properties = { markdown = local.links } }],
      [
        for index, widget in local.widgets : {
          type   = "metric"
          width  = 12
          height = 6
          properties = {
            title   = widget.title
            region  = local.region
            view    = "timeSeries"
            stacked = try(widget.stacked, false)
            period  = 300
            metrics = concat(local.metric_lines[index], try(widget.aws_metrics, []))
            yAxis   = { left = { min = 0 } }
          }
        }
      ],
    )
  })
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.dashboard_enabled ? 1 : 0

  dashboard_name = local.dashboard_name
  dashboard_body = local.dashboard_body

  lifecycle {
    precondition {
      condition     = length(local.unknown_metrics) == 0
      error_message = "Dashboard widgets name metrics that modules/observability/metrics.json does not list: ${join(", ", local.unknown_metrics)}. Rename them in the widgets (or add them to the catalogue and the emitter)."
    }
  }
}
