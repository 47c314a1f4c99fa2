locals {
  # One pattern per action, matching every version it serves (the versions of one action differ only in version).
  action_type_patterns = [
    for action in values(var.actions) : {
      owner    = ["Custom"]
      category = [action.category]
      provider = [action.provider]
      version  = action.versions
    }
  ]
  # Each action matched as a whole ($or), so that no mix of two actions' fields matches. Encoded in both branches
  # because the two objects differ in type; a single action needs no $or.
  started_event_detail = length(local.action_type_patterns) == 1 ? jsonencode({
    state = ["STARTED"]
    type  = local.action_type_patterns[0]
    }) : jsonencode({
    state = ["STARTED"]
    "$or" = [for pattern in local.action_type_patterns : { type = pattern }]
  })
}

resource "aws_cloudwatch_event_rule" "job_started" {
  name        = "${var.name_prefix}-job-started"
  description = "A CodePipeline action of this stack's action types started: poll for its job."
  event_pattern = jsonencode({
    source        = ["aws.codepipeline"]
    "detail-type" = ["CodePipeline Action Execution State Change"]
    detail        = jsondecode(local.started_event_detail)
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "job_started" {
  rule = aws_cloudwatch_event_rule.job_started.name
  arn  = aws_lambda_function.this["poll"].arn
}

resource "aws_cloudwatch_event_rule" "job_sweep" {
  name                = "${var.name_prefix}-job-sweep"
  description         = "Sweep: poll for jobs whose event was lost, continuation jobs and command results never delivered."
  schedule_expression = var.job_sweep_schedule_expression
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "job_sweep" {
  rule = aws_cloudwatch_event_rule.job_sweep.name
  arn  = aws_lambda_function.this["poll"].arn
}

resource "aws_cloudwatch_event_rule" "command_finished" {
  name        = "${var.name_prefix}-command-finished"
  description = "A build command of this stack's SSM document reached a terminal status."
  event_pattern = jsonencode({
    source        = ["aws.ssm"]
    "detail-type" = ["EC2 Command Invocation Status-change Notification"]
    detail = {
      "document-name" = [var.document_name]
      status          = ["Success", "Failed", "TimedOut", "Cancelled"]
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "command_finished" {
  rule = aws_cloudwatch_event_rule.command_finished.name
  arn  = aws_lambda_function.this["command_event"].arn
}

resource "aws_cloudwatch_event_rule" "reaper" {
  name                = "${var.name_prefix}-reaper"
  description         = "Reaper: mark, then terminate, builder instances no live job owns; fail jobs whose execution ended unreported."
  schedule_expression = var.reaper_schedule_expression
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "reaper" {
  rule = aws_cloudwatch_event_rule.reaper.name
  arn  = aws_lambda_function.this["reap"].arn
}

resource "aws_cloudwatch_event_rule" "pool_keeper" {
  name                = "${var.name_prefix}-pool-keeper"
  description         = "Pool keeper: keep each pool's minimum ready, retire unhealthy, rotated, recycled and idle instances, serve and expire the capacity queue."
  schedule_expression = var.pool_keeper_schedule_expression
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "pool_keeper" {
  rule = aws_cloudwatch_event_rule.pool_keeper.name
  arn  = aws_lambda_function.this["keeper"].arn
}

# A builder going away mid-build (DESIGN.md): EC2's spot interruption warning (best effort, two minutes ahead), and
# every instance's change to shutting-down or terminated (the warning may be lost; an on-demand builder terminated
# mid-build then fails its job at once instead of at its timeout). Events carry no tags: the interruption function
# ignores instances of other stacks. Rebalance recommendations are logged only: acting on them would restart builds
# that may never be interrupted.
locals {
  instance_event_rules = {
    spot_interruption = {
      description = "A spot instance is about to be interrupted: restart the build it runs, if it is one of this stack's builders."
      pattern     = { "detail-type" = ["EC2 Spot Instance Interruption Warning"] }
    }
    rebalance_recommendation = {
      description = "A spot instance is at elevated risk of interruption: logged by the interruption function."
      pattern     = { "detail-type" = ["EC2 Instance Rebalance Recommendation"] }
    }
    instance_terminating = {
      description = "An instance is shutting down or terminated: restart or fail the build it runs, if it is one of this stack's builders."
      pattern = {
        "detail-type" = ["EC2 Instance State-change Notification"]
        detail        = { state = ["shutting-down", "terminated"] }
      }
    }
  }
}

resource "aws_cloudwatch_event_rule" "instance" {
  for_each = local.instance_event_rules

  name          = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description   = each.value.description
  event_pattern = jsonencode(merge({ source = ["aws.ec2"] }, each.value.pattern))
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "instance" {
  for_each = local.instance_event_rules

  rule = aws_cloudwatch_event_rule.instance[each.key].name
  arn  = aws_lambda_function.this["interruption"].arn
}

resource "aws_lambda_permission" "events" {
  for_each = merge({
    job_started      = { function = "poll", rule_arn = aws_cloudwatch_event_rule.job_started.arn }
    job_sweep        = { function = "poll", rule_arn = aws_cloudwatch_event_rule.job_sweep.arn }
    command_finished = { function = "command_event", rule_arn = aws_cloudwatch_event_rule.command_finished.arn }
    reaper           = { function = "reap", rule_arn = aws_cloudwatch_event_rule.reaper.arn }
    pool_keeper      = { function = "keeper", rule_arn = aws_cloudwatch_event_rule.pool_keeper.arn }
    }, {
    for key in keys(local.instance_event_rules) : key => { function = "interruption", rule_arn = aws_cloudwatch_event_rule.instance[key].arn }
  })

  statement_id  = "events-${replace(each.key, "_", "-")}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.value.function].function_name
  principal     = "events.amazonaws.com"
  source_arn    = each.value.rule_arn
}
