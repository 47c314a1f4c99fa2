data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  functions = {
    poll          = { timeout = 120, description = "Polls CodePipeline for jobs of this stack's action types, starts one execution per job and publishes its Details link; also the sweep." }
    acquire       = { timeout = 120, description = "Validates a job (defaults, guardrails, the AMI), then launches its tagged builder instance." }
    wait_online   = { timeout = 900, description = "Waits until the builder is Online in Systems Manager (learned registration time, checks every second around it)." }
    run_command   = { timeout = 60, description = "Stores the task token and sends the build command." }
    command_event = { timeout = 60, description = "Turns the SSM command's status-change event into the task's result." }
    release       = { timeout = 120, description = "Returns the job's instance to its pool, stops or retires it, or terminates it (every instance tagged with the job's id if its id is unknown); then serves the capacity queue." }
    report        = { timeout = 60, description = "Answers the open CodePipeline job with the build's result, exactly once." }
    reap          = { timeout = 300, description = "Marks, then terminates, builder instances no live job or pool owns; recovers leases of ended jobs; fails acknowledged jobs whose execution ended unreported." }
    enqueue       = { timeout = 60, description = "Queues a job that found no capacity (its task token) and serves the queue at once." }
    keeper        = { timeout = 300, description = "Keeps each pool's minimum ready, retires unhealthy, rotated, recycled and idle instances, serves and expires the capacity queue." }
    interruption  = { timeout = 60, description = "Turns a builder's spot interruption warning or termination during a build into the restart of its build (SpotInterrupted) or its failure (InstanceLost); logs rebalance recommendations." }
  }
  function_names = { for key in keys(local.functions) : key => "${var.name_prefix}-${replace(key, "_", "-")}" }

  # Names and ARNs computed from the prefix, so that the functions' configuration and policies need no reference
  # to the resources that in turn reference the functions (no dependency cycle).
  arn_prefix        = "arn:${local.partition}"
  state_machine_arn = "${local.arn_prefix}:states:${local.region}:${local.account_id}:stateMachine:${var.name_prefix}-job"
  execution_arns    = "${local.arn_prefix}:states:${local.region}:${local.account_id}:execution:${var.name_prefix}-job:*"
  jobs_table_name   = "${var.name_prefix}-jobs"
  jobs_table_arn    = "${local.arn_prefix}:dynamodb:${local.region}:${local.account_id}:table/${local.jobs_table_name}"
  pool_table_name   = "${var.name_prefix}-pool"
  pool_table_arn    = "${local.arn_prefix}:dynamodb:${local.region}:${local.account_id}:table/${local.pool_table_name}"
  function_arns     = { for key, name in local.function_names : key => "${local.arn_prefix}:lambda:${local.region}:${local.account_id}:function:${name}" }
  log_group_arns    = { for key, name in local.function_names : key => "${local.arn_prefix}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${name}" }
  action_type_arns = flatten([
    for action in values(var.actions) : [
      for version in action.versions :
      "${local.arn_prefix}:codepipeline:${local.region}:${local.account_id}:actiontype:Custom/${action.category}/${action.provider}/${version}"
    ]
  ])

  config_json = module.lambda_config.json
  # Lambda allows 4 KB for all environment variables together; the rest is headroom for AWS_* overrides.
  config_size_limit = 3500

  code_hash  = fileexists(var.lambda_zip_path) ? filebase64sha256(var.lambda_zip_path) : null
  layer_hash = fileexists(var.lambda_layer_zip_path) ? filebase64sha256(var.lambda_layer_zip_path) : null
}

# The single environment variable every function reads (DESIGN.md, "Lambda configuration"), composed by a
# provider-free module that the handler tests render too.
module "lambda_config" {
  source = "../lambda_config"

  name_prefix                      = var.name_prefix
  actions                          = var.actions
  state_machine_arn                = local.state_machine_arn
  jobs_table_name                  = local.jobs_table_name
  document_name                    = var.document_name
  build_log_group_name             = var.build_log_group_name
  subnet_ids                       = var.subnet_ids
  security_group_ids               = var.security_group_ids
  allowed_image_ids                = var.allowed_image_ids
  allowed_image_owners             = var.allowed_image_owners
  allowed_instance_types           = var.allowed_instance_types
  default_build_timeout_minutes    = var.default_build_timeout_minutes
  max_build_timeout_minutes        = var.max_build_timeout_minutes
  ssm_registration_timeout_minutes = var.ssm_registration_timeout_minutes
  poll_function_name               = local.function_names.poll
  orphan_grace_minutes             = var.orphan_grace_minutes
  tracing_enabled                  = var.tracing_enabled
  pool_table_name                  = local.pool_table_name
  keeper_function_name             = local.function_names.keeper
  launch_templates                 = { for platform, template in var.launch_templates : platform => { id = template.id, version = template.version } }
  metrics_namespace                = var.metrics_namespace
  subnet_zones                     = var.subnet_zones
}

resource "aws_dynamodb_table" "jobs" {
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key (aws/dynamodb); items hold job ids and task tokens, never credentials.
  name         = local.jobs_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "job_id"

  attribute {
    name = "job_id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# The registry of instances (DESIGN.md, "Instance pools"): per action, a counter (instances held, jobs queued), one
# record per instance the stack launched (ephemeral ones included: the table, not DescribeInstances, is the truth for
# the cap) and the queue of jobs waiting for capacity with their task tokens. TTL on expires_at, as the jobs table.
resource "aws_dynamodb_table" "pool" {
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key (aws/dynamodb); items hold instance and job ids and task tokens, never credentials.
  name         = local.pool_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pool"
  range_key    = "id"

  attribute {
    name = "pool"
    type = "S"
  }

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "lambda" {
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# What every function imports beyond the runtime: aws-lambda-powertools (logs, metrics) with typing_extensions, and
# aws-xray-sdk with wrapt (tracing, with tracing_enabled).
resource "aws_lambda_layer_version" "dependencies" {
  layer_name               = "${var.name_prefix}-dependencies"
  description              = "aws-lambda-powertools, typing_extensions, aws-xray-sdk and wrapt for the ${var.name_prefix} functions."
  filename                 = var.lambda_layer_zip_path
  source_code_hash         = local.layer_hash
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = ["arm64"]

  lifecycle {
    precondition {
      condition     = local.layer_hash != null
      error_message = "The layer zip ${var.lambda_layer_zip_path} does not exist: run `make build` in the module's repository."
    }
  }
}

moved {
  from = aws_lambda_layer_version.xray
  to   = aws_lambda_layer_version.dependencies
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_115:A reservation is carved out of the account's pool (applies fail below its minimum of unreserved) and throttles event bursts; concurrency is bounded by jobs anyway.
  #checkov:skip=CKV_AWS_116:Step Functions invokes most synchronously (a DLQ never fires); for the async ones (poll, command_event, reap) the schedules are the retry: the sweep recovers lost events.
  #checkov:skip=CKV_AWS_117:The functions call only AWS APIs: a VPC would need NAT or endpoints and ENIs, and protects nothing here.
  #checkov:skip=CKV_AWS_173:EC2_ACTION_CONFIG holds names and ids, no secret; Lambda encrypts it at rest with its AWS managed key.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is the tracing_enabled variable's choice, off by default (the SDK adds about 250 ms to every cold start).
  #checkov:skip=CKV_AWS_272:The zip is built from this repository at apply time (make build, reproducible); code signing needs a Signer profile and signed S3 objects.
  for_each = local.functions

  function_name    = local.function_names[each.key]
  description      = each.value.description
  role             = aws_iam_role.lambda[each.key].arn
  handler          = "ec2_action.handlers.${each.key}.handler"
  runtime          = var.lambda_runtime
  architectures    = ["arm64"]
  filename         = var.lambda_zip_path
  source_code_hash = local.code_hash
  layers           = [aws_lambda_layer_version.dependencies.arn]
  timeout          = each.value.timeout
  memory_size      = 256

  environment {
    variables = {
      EC2_ACTION_CONFIG = local.config_json
    }
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  tags = var.tags

  # The log group must exist first, or Lambda creates one without retention or encryption.
  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.lambda]

  lifecycle {
    precondition {
      condition     = local.code_hash != null
      error_message = "The function zip ${var.lambda_zip_path} does not exist: run `make build` in the module's repository."
    }
    precondition {
      condition     = length(local.config_json) < local.config_size_limit
      error_message = "EC2_ACTION_CONFIG is ${length(local.config_json)} bytes; it must stay under ${local.config_size_limit} (Lambda allows 4 KB of environment variables). Shorten it: fewer or broader allowed_instance_types patterns, fewer allowed_image_ids, fewer subnet_ids or security_group_ids, fewer actions, or a shorter name_prefix."
    }
  }
}

resource "aws_cloudwatch_log_group" "state_machine" {
  # The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy small when many state machines log.
  name              = "/aws/vendedlogs/states/${var.name_prefix}-job"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

locals {
  # Retry budgets of the state machine. Capacity: 30 s, 60 s, 120 s, then the job fails with the capacity error.
  capacity_retry_interval_seconds = 30
  capacity_retry_max_attempts     = 3

  state_machine_definition = templatefile("${path.module}/../../asl/build-job.asl.json", {
    partition                       = local.partition
    acquire_function_arn            = aws_lambda_function.this["acquire"].arn
    wait_online_function_arn        = aws_lambda_function.this["wait_online"].arn
    run_command_function_arn        = aws_lambda_function.this["run_command"].arn
    enqueue_function_arn            = aws_lambda_function.this["enqueue"].arn
    release_function_arn            = aws_lambda_function.this["release"].arn
    report_function_arn             = aws_lambda_function.this["report"].arn
    capacity_retry_interval_seconds = local.capacity_retry_interval_seconds
    capacity_retry_max_attempts     = local.capacity_retry_max_attempts
  })
}

resource "aws_sfn_state_machine" "job" {
  #checkov:skip=CKV_AWS_285:Execution data stays out of logs on purpose (artifact locations, job details); the execution history keeps it.
  name       = "${var.name_prefix}-job"
  type       = "STANDARD"
  role_arn   = aws_iam_role.state_machine.arn
  definition = local.state_machine_definition

  # ERROR only and no execution data: states carry artifact locations and job details that stay out of logs.
  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = false
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = var.tracing_enabled
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.state_machine]

  lifecycle {
    precondition {
      condition     = var.default_build_timeout_minutes <= var.max_build_timeout_minutes
      error_message = "default_build_timeout_minutes (${var.default_build_timeout_minutes}) exceeds max_build_timeout_minutes (${var.max_build_timeout_minutes})."
    }
  }
}
