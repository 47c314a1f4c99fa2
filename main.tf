locals {
  # Defaults applied once, so that the action types, the functions' configuration and the docs agree. The versions
  # the functions serve come from the registered action types (module.action_type): a new version is registered
  # before the poller polls it, and a removed one is deleted only after the poller stopped polling it.
  actions = {
    for key, action in var.actions : key => {
      category             = action.category
      provider             = action.provider
      versions             = module.action_type.served_action_types[key][*].version
      image_id             = action.image_id
      instance_type        = action.instance_type
      timeout_minutes      = coalesce(action.timeout_minutes, var.default_build_timeout_minutes)
      root_volume_size_gib = coalesce(action.root_volume_size_gib, var.root_volume_size_gib)
      # Capacity: the optional() defaults of var.actions are already applied, pool's included.
      strategy              = action.strategy
      max_concurrent_builds = action.max_concurrent_builds
      pool                  = action.pool
      # Purchase: validated by var.actions (and the action_types output for the allowed instance types).
      instance_types                 = action.instance_types
      purchase_option                = action.purchase_option
      allocation_strategy            = action.allocation_strategy
      interruptions_before_on_demand = action.interruptions_before_on_demand
    }
  }
}

locals {
  # allowed_instance_types' shell-style patterns as regular expressions (validated: letters, digits, -, ., * and ?).
  allowed_instance_type_regexes = [
    for pattern in var.allowed_instance_types : "^${replace(replace(replace(pattern, ".", "\\."), "*", ".*"), "?", ".")}$"
  ]
  # Instance types an action lists beyond the guardrail: refused at plan time (the action_types output).
  disallowed_instance_types = distinct(flatten([
    for action in values(var.actions) : [
      for type in action.instance_types : type if !anytrue([for expression in local.allowed_instance_type_regexes : can(regex(expression, type))])
    ]
  ]))
}

module "ssm_document" {
  source = "./modules/ssm_document"

  name_prefix        = var.name_prefix
  log_retention_days = var.log_retention_days
  log_kms_key_arn    = var.log_kms_key_arn
  tags               = var.tags
}

module "builder" {
  source = "./modules/builder"

  name_prefix              = var.name_prefix
  subnet_ids               = var.subnet_ids
  security_group_ids       = var.security_group_ids
  egress_cidr_blocks       = var.builder_egress_cidr_blocks
  metadata_hop_limit       = var.builder_metadata_hop_limit
  artifact_bucket_arns     = var.artifact_bucket_arns
  artifact_kms_key_arns    = var.artifact_kms_key_arns
  build_log_group_arn      = module.ssm_document.build_log_group_arn
  extra_policy_arns        = var.builder_iam_policy_arns
  permissions_boundary_arn = var.iam_role_permissions_boundary_arn
  tags                     = var.tags
}

module "action_type" {
  source = "./modules/action_type"

  actions = {
    for key, action in var.actions : key => {
      category          = action.category
      provider          = action.provider
      version           = action.version
      previous_versions = action.previous_versions
      image_id          = action.image_id
      instance_type     = action.instance_type
      timeout_minutes   = action.timeout_minutes
    }
  }
  max_build_timeout_minutes = var.max_build_timeout_minutes
  allowed_image_ids         = var.allowed_image_ids
  allowed_instance_types    = var.allowed_instance_types
  document_name             = module.ssm_document.document_name
  tags                      = var.tags
}

module "orchestrator" {
  source = "./modules/orchestrator"

  name_prefix                      = var.name_prefix
  actions                          = local.actions
  subnet_ids                       = var.subnet_ids
  subnet_zones                     = module.builder.subnet_zones
  security_group_ids               = module.builder.security_group_ids
  launch_templates                 = module.builder.launch_templates
  builder_role_arn                 = module.builder.role_arn
  document_name                    = module.ssm_document.document_name
  document_arn                     = module.ssm_document.document_arn
  build_log_group_name             = module.ssm_document.build_log_group_name
  allowed_image_ids                = var.allowed_image_ids
  allowed_image_owners             = var.allowed_image_owners
  allowed_instance_types           = var.allowed_instance_types
  default_build_timeout_minutes    = var.default_build_timeout_minutes
  max_build_timeout_minutes        = var.max_build_timeout_minutes
  root_volume_size_gib             = var.root_volume_size_gib
  ssm_registration_timeout_minutes = var.ssm_registration_timeout_minutes
  job_sweep_schedule_expression    = var.job_sweep_schedule_expression
  reaper_schedule_expression       = var.reaper_schedule_expression
  pool_keeper_schedule_expression  = var.pool_keeper_schedule_expression
  orphan_grace_minutes             = var.orphan_grace_minutes
  metrics_namespace                = var.metrics_namespace
  log_retention_days               = var.log_retention_days
  log_kms_key_arn                  = var.log_kms_key_arn
  tracing_enabled                  = var.tracing_enabled
  lambda_runtime                   = var.lambda_runtime
  lambda_zip_path                  = "${path.module}/lambda_src/dist/ec2_action.zip"
  lambda_layer_zip_path            = "${path.module}/lambda_src/dist/dependencies_layer.zip"
  permissions_boundary_arn         = var.iam_role_permissions_boundary_arn
  tags                             = var.tags
}

# The dashboard and every alarm, read from the metrics catalogue (modules/observability/metrics.json).
module "observability" {
  source = "./modules/observability"

  name_prefix       = var.name_prefix
  metrics_namespace = var.metrics_namespace
  actions = {
    for key, action in var.actions : key => {
      keeps_ready_instances = max(action.pool.min_ready, action.pool.schedule[*].min_ready...) > 0
    }
  }
  function_names               = module.orchestrator.function_names
  state_machine_arn            = module.orchestrator.state_machine_arn
  build_log_group_name         = module.ssm_document.build_log_group_name
  reaper_schedule_expression   = var.reaper_schedule_expression
  alarm_actions                = var.alarm_actions
  dashboard_enabled            = var.dashboard_enabled
  queue_wait_alarm_minutes     = var.queue_wait_alarm_minutes
  pool_shortfall_alarm_minutes = var.pool_shortfall_alarm_minutes
  tags                         = var.tags
}

# The alarms moved from modules/orchestrator to modules/observability: same names, no replacement.
moved {
  from = module.orchestrator.aws_cloudwatch_metric_alarm.this
  to   = module.observability.aws_cloudwatch_metric_alarm.this
}
