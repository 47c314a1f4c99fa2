# The single environment variable every function reads (DESIGN.md, "Lambda configuration"), composed here and only
# here: the orchestrator passes it to the functions, and the handler tests render this module with Terraform for
# their fixtures (tests/harness/rendered.py), so a key added here reaches both.
locals {
  config = {
    stack = var.name_prefix
    actions = [
      for key in sort(keys(var.actions)) : {
        category = var.actions[key].category
        owner    = "Custom"
        provider = var.actions[key].provider
        versions = var.actions[key].versions
        defaults = {
          ImageId        = var.actions[key].image_id
          InstanceType   = var.actions[key].instance_type
          TimeoutMinutes = var.actions[key].timeout_minutes
          RootVolumeGiB  = var.actions[key].root_volume_size_gib
        }
        # Capacity (DESIGN.md, "Instance pools"), in short keys: the configuration must stay under 3,500 bytes.
        key      = key
        strategy = var.actions[key].strategy
        cap      = var.actions[key].max_concurrent_builds
        pool = var.actions[key].strategy == "ephemeral" ? null : {
          min = var.actions[key].pool.min_ready
          schedule = [
            for window in var.actions[key].pool.schedule : {
              days = window.days
              from = window.from_hour
              to   = window.to_hour
              min  = window.min_ready
            }
          ]
          tz         = var.actions[key].pool.timezone
          hibernate  = var.actions[key].pool.hibernate
          max_builds = var.actions[key].pool.max_builds
          max_age_h  = var.actions[key].pool.max_age_hours
          idle_min   = var.actions[key].pool.max_idle_minutes
          reset      = var.actions[key].pool.reset_command
        }
        # How its instances are bought: the instance types after instance_type, in order of preference; the purchase
        # option; the allocation strategy, resolved here and never null (price-capacity-optimized for spot,
        # prioritized for on-demand); the interruptions after which its builds move to on-demand.
        types    = var.actions[key].instance_types
        purchase = var.actions[key].purchase_option
        alloc = coalesce(
          var.actions[key].allocation_strategy,
          var.actions[key].purchase_option == "on-demand" ? "prioritized" : "price-capacity-optimized",
        )
        od_after = var.actions[key].interruptions_before_on_demand
      }
    ]
    state_machine_arn                = var.state_machine_arn
    jobs_table                       = var.jobs_table_name
    document_name                    = var.document_name
    build_log_group                  = var.build_log_group_name
    subnet_ids                       = var.subnet_ids
    security_group_ids               = var.security_group_ids
    allowed_image_ids                = var.allowed_image_ids
    allowed_image_owners             = var.allowed_image_owners
    allowed_instance_types           = var.allowed_instance_types
    default_timeout_minutes          = var.default_build_timeout_minutes
    max_timeout_minutes              = var.max_build_timeout_minutes
    ssm_registration_timeout_seconds = var.ssm_registration_timeout_minutes * 60
    poll_function_name               = var.poll_function_name
    orphan_grace_seconds             = var.orphan_grace_minutes * 60
    tracing                          = var.tracing_enabled
    pool_table                       = var.pool_table_name
    keeper_function_name             = var.keeper_function_name
    metrics_namespace                = var.metrics_namespace
    subnet_zones                     = { for subnet_id in var.subnet_ids : subnet_id => var.subnet_zones[subnet_id] if contains(keys(var.subnet_zones), subnet_id) }
    launch_templates = {
      for platform, template in var.launch_templates : platform => { id = template.id, version = template.version }
    }
  }
}
