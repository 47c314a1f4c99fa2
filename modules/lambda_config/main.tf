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
      }
    ]
    state_machine_arn                = var.state_machine_arn
    jobs_table                       = var.jobs_table_name
    document_name                    = var.document_name
    build_log_group                  = var.build_log_group_name
    launch_template_id               = var.launch_template_id
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
  }
}
