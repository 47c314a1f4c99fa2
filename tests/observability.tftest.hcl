# modules/observability on its own, planned against a mocked provider: the dashboard's JSON against the metrics
# catalogue (every metric a widget names is in modules/observability/metrics.json, every catalogue metric is shown),
# each alarm's metric and threshold, and the inputs' validations. The last runs plan the whole module: its inputs
# reach the dashboard, the alarms and the functions' configuration.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { id = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_subnet" {
    defaults = { vpc_id = "vpc-0123456789abcdef0", availability_zone = "eu-west-1a" }
  }
}

variables {
  name_prefix       = "ci-build"
  metrics_namespace = "CodePipelineEc2Action"
  actions = {
    linux   = { keeps_ready_instances = false }
    windows = { keeps_ready_instances = true }
  }
  function_names = {
    poll          = "ci-build-poll"
    acquire       = "ci-build-acquire"
    wait_online   = "ci-build-wait-online"
    run_command   = "ci-build-run-command"
    command_event = "ci-build-command-event"
    release       = "ci-build-release"
    report        = "ci-build-report"
    reap          = "ci-build-reap"
    enqueue       = "ci-build-enqueue"
    keeper        = "ci-build-keeper"
    interruption  = "ci-build-interruption"
  }
  state_machine_arn          = "arn:aws:states:eu-west-1:123456789012:stateMachine:ci-build-job"
  build_log_group_name       = "/ci-build/builds"
  reaper_schedule_expression = "rate(5 minutes)"
  alarm_actions              = ["arn:aws:sns:eu-west-1:123456789012:ops"]
  tags                       = { team = "ci" }
}

run "dashboard_draws_the_catalogue_and_nothing_else" {
  command = plan

  module {
    source = "./modules/observability"
  }

  assert {
    condition     = aws_cloudwatch_dashboard.this[0].dashboard_name == "ci-build" && output.dashboard_name == "ci-build"
    error_message = "The dashboard is named after the prefix."
  }
  assert {
    condition     = output.dashboard_url == "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/ci-build"
    error_message = "The dashboard's address is the console of the Region."
  }
  assert {
    condition     = can(jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets[0])
    error_message = "The dashboard body must parse as JSON with widgets."
  }
  assert {
    # CloudWatch refuses a body over 1 MB (bytes; the body is ASCII but for a few characters of text).
    condition     = length(aws_cloudwatch_dashboard.this[0].dashboard_body) < 1000000
    error_message = "The dashboard body must stay under CloudWatch's 1 MB limit."
  }
  assert {
    # Every metric of our namespace a widget names, as a metric line or in a SEARCH expression, is in the catalogue.
    condition = length(setsubtract(
      flatten([
        for widget in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : [
          for line in try(widget.properties.metrics, []) : try(line[0] == "CodePipelineEc2Action", false) ? [line[1]] : regexall("MetricName=\"(\\w+)\"", try(line[0].expression, ""))[*][0]
        ]
      ]),
      keys(jsondecode(file("modules/observability/metrics.json")).metrics)
    )) == 0
    error_message = "A widget names a metric that modules/observability/metrics.json does not list."
  }
  assert {
    # Every catalogue metric (but those marked "dashboard": false) is drawn.
    condition = length(setsubtract(
      [for name, metric in jsondecode(file("modules/observability/metrics.json")).metrics : name if try(metric.dashboard, true)],
      flatten([
        for widget in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : [
          for line in try(widget.properties.metrics, []) : try(line[0] == "CodePipelineEc2Action", false) ? [line[1]] : regexall("MetricName=\"(\\w+)\"", try(line[0].expression, ""))[*][0]
        ]
      ])
    )) == 0
    error_message = "A catalogue metric is missing from the dashboard."
  }
  assert {
    # Metrics with extra dimensions are SEARCHes over exactly their dimension set, in our namespace and stack.
    condition = contains(flatten([
      for widget in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : [for line in try(widget.properties.metrics, []) : try(line[0].expression, "")]
      ]),
      "SEARCH('{\"CodePipelineEc2Action\",Action,AvailabilityZone,InstanceType,Stack} Stack=\"ci-build\" MetricName=\"CapacityErrors\"', 'Sum', 300)"
    )
    error_message = "Capacity errors must be drawn per instance type and zone with a SEARCH over their dimension set."
  }
  assert {
    # Per-action metrics: one line per action, p50 and p90 for the latency split.
    condition = alltrue([
      for stat in ["p50", "p90"] : alltrue([
        for key in ["linux", "windows"] : contains(flatten([
          for widget in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : [
            for line in try(widget.properties.metrics, []) : jsonencode(line) if try(line[1] == "BootSeconds", false)
          ]
          ]),
          jsonencode(["CodePipelineEc2Action", "BootSeconds", "Stack", "ci-build", "Action", key, { label = "${key} BootSeconds ${stat}", stat = stat }])
        )
      ])
    ])
    error_message = "BootSeconds must be drawn per action at p50 and p90."
  }
  assert {
    condition = length([
      for widget in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : widget
      if widget.type == "metric" && try(widget.properties.region, null) != "eu-west-1"
    ]) == 0
    error_message = "Every metric widget must name the Region (CloudWatch requires it)."
  }
  assert {
    condition = alltrue([
      for link in [
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Fci-build$252Fbuilds",
        "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/statemachines/view/arn:aws:states:eu-west-1:123456789012:stateMachine:ci-build-job",
      ] : strcontains(jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets[0].properties.markdown, "(${link})")
    ])
    error_message = "The text widget must link the build log group and the state machine."
  }
  assert {
    condition = length([
      for widget in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : widget
      if strcontains(jsonencode(try(widget.properties.metrics, [])), "\"AWS/Lambda\",\"Errors\",\"FunctionName\",\"ci-build-poll\"")
    ]) == 1
    error_message = "Function errors must be drawn per function."
  }
}

run "dashboard_disabled_creates_none_and_keeps_the_alarms" {
  command = plan

  module {
    source = "./modules/observability"
  }

  variables {
    dashboard_enabled = false
  }

  assert {
    condition     = length(aws_cloudwatch_dashboard.this) == 0 && output.dashboard_name == null && output.dashboard_url == null
    error_message = "dashboard_enabled = false must create no dashboard."
  }
  assert {
    condition     = length(output.alarm_names) == 16
    error_message = "The alarms do not depend on the dashboard."
  }
}

run "alarms_watch_the_catalogue_metrics_with_their_thresholds" {
  command = plan

  module {
    source = "./modules/observability"
  }

  variables {
    queue_wait_alarm_minutes     = 20
    pool_shortfall_alarm_minutes = 45
    capacity_error_alarm_periods = 4
  }

  assert {
    condition = sort(keys(output.alarm_names)) == sort([
      "reaped_instances", "executions_timed_out", "executions_aborted",
      "poll_errors", "command_event_errors", "release_errors", "report_errors", "reap_errors", "enqueue_errors", "keeper_errors", "interruption_errors",
      "linux_queue_wait", "windows_queue_wait", "windows_pool_shortfall", "linux_capacity_errors", "windows_capacity_errors",
    ])
    error_message = "The alarms are not the expected ones (no shortfall alarm for a pool without a minimum)."
  }
  assert {
    condition     = alltrue([for alarm in aws_cloudwatch_metric_alarm.this : alarm.alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:ops"]) && alarm.tags == tomap({ team = "ci" })])
    error_message = "Every alarm notifies alarm_actions and carries the tags."
  }
  assert {
    condition     = alltrue([for alarm in aws_cloudwatch_metric_alarm.this : strcontains(alarm.alarm_description, "Look first at")])
    error_message = "Every alarm's description says where to look first."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["reaped_instances"].alarm_name == "ci-build-reaped-instances" &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].namespace == "CodePipelineEc2Action" &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].metric_name == "ReapedInstances" &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].dimensions == tomap({ Stack = "ci-build" }) &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].period == 300 &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].statistic == "Sum" &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].threshold == 1 &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].comparison_operator == "GreaterThanOrEqualToThreshold"
    )
    error_message = "The reaped-instances alarm must fire on one reaped instance within a reaper period."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["windows_queue_wait"].alarm_name == "ci-build-windows-queue-wait" &&
      aws_cloudwatch_metric_alarm.this["windows_queue_wait"].metric_name == "OldestQueuedSeconds" &&
      aws_cloudwatch_metric_alarm.this["windows_queue_wait"].dimensions == tomap({ Stack = "ci-build", Action = "windows" }) &&
      aws_cloudwatch_metric_alarm.this["windows_queue_wait"].statistic == "Maximum" &&
      aws_cloudwatch_metric_alarm.this["windows_queue_wait"].threshold == 1200 &&
      aws_cloudwatch_metric_alarm.this["windows_queue_wait"].comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.this["windows_queue_wait"].evaluation_periods == 1
    )
    error_message = "The queue-wait alarm must fire when the oldest queued job waited over queue_wait_alarm_minutes."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].metric_name == "MissingReadyInstances" &&
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].dimensions == tomap({ Stack = "ci-build", Action = "windows" }) &&
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].statistic == "Minimum" &&
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].period == 300 &&
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].evaluation_periods == 9 &&
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].datapoints_to_alarm == 9 &&
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].threshold == 0 &&
      aws_cloudwatch_metric_alarm.this["windows_pool_shortfall"].comparison_operator == "GreaterThanThreshold"
    )
    error_message = "The pool-shortfall alarm must fire when every 5-minute minimum of MissingReadyInstances stayed above 0 for pool_shortfall_alarm_minutes."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["linux_capacity_errors"].metric_name == null &&
      one(aws_cloudwatch_metric_alarm.this["linux_capacity_errors"].metric_query).expression == "SELECT SUM(CapacityErrors) FROM SCHEMA(\"CodePipelineEc2Action\", Action, AvailabilityZone, InstanceType, Stack) WHERE Stack = 'ci-build' AND Action = 'linux'" &&
      one(aws_cloudwatch_metric_alarm.this["linux_capacity_errors"].metric_query).period == 300 &&
      aws_cloudwatch_metric_alarm.this["linux_capacity_errors"].evaluation_periods == 4 &&
      aws_cloudwatch_metric_alarm.this["linux_capacity_errors"].datapoints_to_alarm == 4 &&
      aws_cloudwatch_metric_alarm.this["linux_capacity_errors"].threshold == 0
    )
    error_message = "The capacity-errors alarm must sum CapacityErrors over the action's instance types and zones for capacity_error_alarm_periods periods."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["interruption_errors"].namespace == "AWS/Lambda" &&
      aws_cloudwatch_metric_alarm.this["interruption_errors"].dimensions == tomap({ FunctionName = "ci-build-interruption" }) &&
      aws_cloudwatch_metric_alarm.this["executions_aborted"].dimensions == tomap({ StateMachineArn = "arn:aws:states:eu-west-1:123456789012:stateMachine:ci-build-job" })
    )
    error_message = "The function and execution alarms watch AWS's metrics of this stack's functions and state machine."
  }
}

run "hourly_reaper_sets_the_reaped_alarm_period" {
  command = plan

  module {
    source = "./modules/observability"
  }

  variables {
    reaper_schedule_expression = "rate(2 hours)"
    metrics_namespace          = "Team/CI-Builds"
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["reaped_instances"].period == 7200 &&
      aws_cloudwatch_metric_alarm.this["reaped_instances"].namespace == "Team/CI-Builds" &&
      aws_cloudwatch_metric_alarm.this["linux_queue_wait"].namespace == "Team/CI-Builds"
    )
    error_message = "rate(2 hours) gives a 7200-second reaped-instances alarm period; the alarms read metrics_namespace."
  }
  assert {
    condition     = strcontains(aws_cloudwatch_dashboard.this[0].dashboard_body, "\"Team/CI-Builds\",\"ReapedInstances\"")
    error_message = "The dashboard reads metrics_namespace."
  }
}

run "rejects_bad_module_inputs" {
  command = plan

  module {
    source = "./modules/observability"
  }

  variables {
    metrics_namespace            = "AWS/Builds"
    queue_wait_alarm_minutes     = 0
    pool_shortfall_alarm_minutes = 12
    capacity_error_alarm_periods = 1.5
    actions                      = { "linux build" = { keeps_ready_instances = false } }
  }

  expect_failures = [
    var.metrics_namespace,
    var.queue_wait_alarm_minutes,
    var.pool_shortfall_alarm_minutes,
    var.capacity_error_alarm_periods,
    var.actions,
  ]
}

# The whole module: its inputs reach the dashboard, the alarms and the functions' configuration.

override_resource {
  target          = module.builder.aws_launch_template.builder
  override_during = plan
  values          = { id = "lt-0123456789abcdef0", latest_version = 1 }
}

override_resource {
  target          = module.builder.aws_launch_template.builder_windows
  override_during = plan
  values          = { id = "lt-0123456789abcdef1", latest_version = 2 }
}

override_resource {
  target          = module.builder.aws_security_group.builder
  override_during = plan
  values          = { id = "sg-0123456789abcdef0" }
}

run "root_module_wires_the_dashboard_and_the_namespace" {
  command = plan

  variables {
    actions = {
      linux = { provider = "EC2-Linux", instance_type = "t4g.large" }
      warm  = { provider = "EC2-Warm", image_id = "ami-0123456789abcdef0", instance_type = "t4g.large", strategy = "warm", pool = { min_ready = 1 } }
    }
    subnet_ids                   = ["subnet-0123456789abcdef0"]
    artifact_bucket_arns         = ["arn:aws:s3:::my-artifacts"]
    metrics_namespace            = "Team/CI"
    queue_wait_alarm_minutes     = 10
    pool_shortfall_alarm_minutes = 15
  }

  assert {
    condition     = output.dashboard_name == "ci-build" && endswith(output.dashboard_url, "#dashboards/dashboard/ci-build")
    error_message = "The root module outputs the dashboard's name and address."
  }
  assert {
    condition     = jsondecode(module.orchestrator.lambda_config_json).metrics_namespace == "Team/CI"
    error_message = "metrics_namespace must reach the functions' configuration."
  }
  assert {
    condition     = contains(keys(output.alarm_names), "warm_pool_shortfall") && !contains(keys(output.alarm_names), "linux_pool_shortfall")
    error_message = "Only a pool with a minimum gets a shortfall alarm."
  }
  assert {
    condition = (
      module.observability.alarms["linux_queue_wait"].threshold == 600 &&
      module.observability.alarms["warm_pool_shortfall"].evaluation_periods == 3 &&
      module.observability.alarms["reaped_instances"].namespace == "Team/CI"
    )
    error_message = "The root module's alarm inputs must reach the alarms."
  }
}

run "root_module_without_dashboard" {
  command = plan

  variables {
    actions              = { linux = { provider = "EC2-Linux", instance_type = "t4g.large" } }
    subnet_ids           = ["subnet-0123456789abcdef0"]
    artifact_bucket_arns = ["arn:aws:s3:::my-artifacts"]
    dashboard_enabled    = false
  }

  assert {
    condition     = output.dashboard_name == null && output.dashboard_url == null && module.observability.dashboard_name == null
    error_message = "dashboard_enabled = false must create no dashboard."
  }
}

run "root_module_rejects_bad_inputs" {
  command = plan

  variables {
    actions                      = { linux = { provider = "EC2-Linux", instance_type = "t4g.large" } }
    subnet_ids                   = ["subnet-0123456789abcdef0"]
    artifact_bucket_arns         = ["arn:aws:s3:::my-artifacts"]
    metrics_namespace            = ":starts-with-a-colon"
    queue_wait_alarm_minutes     = 1381
    pool_shortfall_alarm_minutes = 7
    dashboard_enabled            = null
  }

  expect_failures = [
    var.metrics_namespace,
    var.queue_wait_alarm_minutes,
    var.pool_shortfall_alarm_minutes,
    var.dashboard_enabled,
  ]
}
