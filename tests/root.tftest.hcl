# The whole module with its defaults, and the input validations that refuse bad values at plan time.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { id = "us-east-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_subnet" {
    defaults = { vpc_id = "vpc-0123456789abcdef0" }
  }
}

# The functions' configuration holds the builder's ids: fixed for every run, so that it is known at plan time.
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

variables {
  name_prefix = "ci-build"
  actions = {
    linux = { provider = "EC2-Linux", instance_type = "t4g.large" }
  }
  subnet_ids           = ["subnet-0123456789abcdef0"]
  artifact_bucket_arns = ["arn:aws:s3:::my-artifacts"]
}

run "plans_with_defaults" {
  command = plan

  assert {
    condition     = output.action_types.linux == { category = "Build", owner = "Custom", provider = "EC2-Linux", version = "1" }
    error_message = "The action type must default to category Build, version 1, owner Custom."
  }
  assert {
    condition     = output.jobs_table_name == "ci-build-jobs" && output.ssm_document_name == "ci-build-run-build"
    error_message = "Resource names must follow the name prefix."
  }
  assert {
    condition     = output.log_group_names.builds == "/ci-build/builds" && output.log_group_names.poll == "/aws/lambda/ci-build-poll"
    error_message = "Log groups must follow the name prefix."
  }
  assert {
    condition     = length(output.lambda_function_names) == 11 && output.reaper_function_name == "ci-build-reap"
    error_message = "The module runs eleven functions, the reaper among them."
  }
  # Without purchase settings an action launches on-demand, types in the order given, and would move to on-demand
  # after two interruptions.
  assert {
    condition = (
      jsondecode(module.orchestrator.lambda_config_json).actions[0].types == [] &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].purchase == "on-demand" &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].alloc == "prioritized" &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].od_after == 2
    )
    error_message = "An action without purchase settings must be on-demand, prioritized, with no further types and two interruptions before on-demand."
  }
  assert {
    condition     = output.launch_template_ids == { Linux = "lt-0123456789abcdef0", Windows = "lt-0123456789abcdef1" } && output.launch_template_id == "lt-0123456789abcdef0"
    error_message = "Both launch templates must be outputs (launch_template_id stays the Linux one)."
  }
  assert {
    condition = (
      output.pool_table_name == "ci-build-pool" && output.pool_keeper_function_name == "ci-build-keeper" &&
      module.orchestrator.keeper_function_name == "ci-build-keeper"
    )
    error_message = "The registry table and the keeper must follow the name prefix."
  }
  # Without capacity settings an action is ephemeral (today's behaviour) with a cap of 10, and has no pool.
  assert {
    condition = (
      jsondecode(module.orchestrator.lambda_config_json).actions[0].strategy == "ephemeral" &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].cap == 10 &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool == null &&
      jsondecode(module.orchestrator.lambda_config_json).launch_templates == {
        Linux   = { id = "lt-0123456789abcdef0", version = "1" }
        Windows = { id = "lt-0123456789abcdef1", version = "2" }
      }
    )
    error_message = "An action without capacity settings must be ephemeral with a cap of 10, and the configuration must carry both launch templates with their versions."
  }
}

run "tracing_is_off_by_default" {
  command = plan
  assert {
    condition     = jsondecode(module.orchestrator.lambda_config_json).tracing == false
    error_message = "Tracing must be off by default."
  }
}

run "tracing_enabled_reaches_the_functions" {
  command = plan
  variables {
    tracing_enabled = true
  }
  assert {
    condition     = jsondecode(module.orchestrator.lambda_config_json).tracing == true
    error_message = "tracing_enabled must reach the functions' configuration."
  }
}

run "rejects_bad_name_prefix" {
  command = plan
  variables {
    name_prefix = "AWS_Build"
  }
  expect_failures = [var.name_prefix]
}

run "rejects_reserved_name_prefix" {
  command = plan
  variables {
    name_prefix = "amazon-build"
  }
  expect_failures = [var.name_prefix]
}

run "rejects_no_actions" {
  command = plan
  variables {
    actions = {}
  }
  expect_failures = [var.actions]
}

run "rejects_long_provider" {
  command = plan
  variables {
    actions = { linux = { provider = "this-provider-name-is-far-too-long-for-codepipeline" } }
  }
  expect_failures = [var.actions]
}

run "rejects_bad_version" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", version = "1.0" } }
  }
  expect_failures = [var.actions]
}

run "serves_previous_versions_beside_the_current_one" {
  command = plan
  variables {
    actions = {
      linux   = { provider = "EC2-Linux", instance_type = "t4g.large", version = "3", previous_versions = ["2"] }
      windows = { provider = "EC2-Windows", category = "Test" }
    }
  }

  assert {
    condition     = toset(keys(module.action_type.served_action_types)) == toset(["linux", "windows"]) && length(module.action_type.served_action_types.linux) == 2
    error_message = "Every served version must be registered."
  }
  assert {
    condition = (
      output.action_types.linux.version == "3" && output.action_types.windows.version == "1" &&
      output.served_action_types.linux[*].version == ["3", "2"] && output.served_action_types.windows[*].version == ["1"]
    )
    error_message = "Pipelines get the current version (action_types); served_action_types lists every served version, current first."
  }
  assert {
    condition = one([
      for statement in jsondecode(module.orchestrator.lambda_policies.poll).Statement : statement.Resource
      if contains(flatten([statement.Action]), "codepipeline:PollForJobs")
      ]) == [
      "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/EC2-Linux/3",
      "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/EC2-Linux/2",
      "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Test/EC2-Windows/1",
    ]
    error_message = "The poller may poll every served version, and only those."
  }
}

run "rejects_bad_previous_version" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", version = "2", previous_versions = ["1.0"] } }
  }
  expect_failures = [var.actions]
}

run "rejects_a_version_listed_twice" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", version = "2", previous_versions = ["1", "2"] } }
  }
  expect_failures = [var.actions]
}

run "rejects_a_previous_version_of_another_actions_type" {
  command = plan
  variables {
    actions = {
      a = { provider = "EC2-Linux", version = "2", previous_versions = ["1"] }
      b = { provider = "EC2-Linux", version = "1", category = "Test" }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_more_action_types_than_codepipeline_allows" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", version = "50", previous_versions = [for i in range(50) : tostring(i)] } }
  }
  expect_failures = [var.actions]
}

run "rejects_bad_category" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", category = "Deploy" } }
  }
  expect_failures = [var.actions]
}

run "rejects_duplicate_provider_and_version" {
  command = plan
  variables {
    actions = {
      a = { provider = "EC2-Linux" }
      b = { provider = "EC2-Linux", category = "Test" }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_bad_action_image_and_type" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", image_id = "al2023", instance_type = "large" } }
  }
  expect_failures = [var.actions]
}

run "rejects_small_action_root_volume" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", root_volume_size_gib = 4 } }
  }
  expect_failures = [var.actions]
}

run "rejects_action_timeout_over_a_day" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", timeout_minutes = 1440 } }
  }
  expect_failures = [var.actions]
}

# One run for the validations of many variables: each listed variable must fail, so a validation that stopped
# working fails this run.
run "rejects_bad_scalar_inputs" {
  command = plan
  variables {
    subnet_ids                        = []
    security_group_ids                = ["default"]
    builder_egress_cidr_blocks        = ["10.0.0.0/33"]
    builder_metadata_hop_limit        = 4
    default_build_timeout_minutes     = 0
    max_build_timeout_minutes         = 1440
    allowed_image_ids                 = ["ubuntu"]
    allowed_instance_types            = ["m5 large"]
    allowed_image_owners              = ["microsoft"]
    root_volume_size_gib              = 4
    artifact_bucket_arns              = ["arn:aws:s3:::my-artifacts/*"]
    artifact_kms_key_arns             = ["arn:aws:kms:us-east-1:123456789012:alias/artifacts"]
    builder_iam_policy_arns           = ["AmazonEC2ContainerRegistryPowerUser"]
    ssm_registration_timeout_minutes  = 0
    job_sweep_schedule_expression     = "every minute"
    pool_keeper_schedule_expression   = "rate(0 minutes)"
    reaper_schedule_expression        = "cron(0/5 * * * ? *)"
    orphan_grace_minutes              = -1
    alarm_actions                     = ["ops-topic"]
    log_retention_days                = 10
    log_kms_key_arn                   = "alias/logs"
    lambda_runtime                    = "python3.9"
    tracing_enabled                   = null
    iam_role_permissions_boundary_arn = "boundary"
    tags                              = { "Cost Center" = "builds" }
  }
  expect_failures = [
    var.subnet_ids,
    var.security_group_ids,
    var.builder_egress_cidr_blocks,
    var.builder_metadata_hop_limit,
    var.default_build_timeout_minutes,
    var.max_build_timeout_minutes,
    var.allowed_image_ids,
    var.allowed_instance_types,
    var.allowed_image_owners,
    var.root_volume_size_gib,
    var.artifact_bucket_arns,
    var.artifact_kms_key_arns,
    var.builder_iam_policy_arns,
    var.ssm_registration_timeout_minutes,
    var.job_sweep_schedule_expression,
    var.pool_keeper_schedule_expression,
    var.reaper_schedule_expression,
    var.orphan_grace_minutes,
    var.alarm_actions,
    var.log_retention_days,
    var.log_kms_key_arn,
    var.lambda_runtime,
    var.tracing_enabled,
    var.iam_role_permissions_boundary_arn,
    var.tags,
  ]
}

run "rejects_reaper_schedules_longer_than_a_day_or_misspelled" {
  command = plan
  variables {
    reaper_schedule_expression = "rate(25 hours)"
  }
  expect_failures = [var.reaper_schedule_expression]
}

run "rejects_plural_reaper_rate_of_one" {
  command = plan
  variables {
    reaper_schedule_expression = "rate(1 minutes)"
  }
  expect_failures = [var.reaper_schedule_expression]
}

run "rejects_aws_tag_key_and_duplicate_subnets" {
  command = plan
  variables {
    subnet_ids = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef0"]
    tags       = { "aws:cloudformation:stack-name" = "x" }
  }
  expect_failures = [var.subnet_ids, var.tags]
}

# Capacity: instance pools and the cap. Each rejected row changes one setting of an accepted configuration, so that
# the validation it names is the one that refuses it.

run "accepts_warm_and_stopped_pools" {
  command = plan
  variables {
    actions = {
      linux = {
        provider              = "EC2-Linux"
        image_id              = "ami-0123456789abcdef0"
        instance_type         = "t4g.large"
        strategy              = "warm"
        max_concurrent_builds = 5
        pool = {
          min_ready        = 1
          schedule         = [{ days = ["Mon", "Tue", "Wed", "Thu", "Fri"], from_hour = 7, to_hour = 19, min_ready = 3 }]
          timezone         = "Europe/Paris"
          max_idle_minutes = 0
          reset_command    = "docker system prune -f --filter until=24h"
        }
      }
      windows = {
        provider              = "EC2-Windows"
        image_id              = "ami-0123456789abcdef1"
        instance_type         = "m6i.xlarge"
        strategy              = "stopped"
        max_concurrent_builds = 500
        pool                  = { min_ready = 2, hibernate = true, max_builds = 1, max_age_hours = 1416 }
      }
      other = { provider = "EC2-Other", category = "Test", max_concurrent_builds = 1 }
    }
  }

  assert {
    condition = (
      [for action in jsondecode(module.orchestrator.lambda_config_json).actions : "${action.key}:${action.strategy}:${action.cap}"] ==
      ["linux:warm:5", "other:ephemeral:1", "windows:stopped:500"]
    )
    error_message = "Each action's strategy and cap must reach the functions."
  }
  assert {
    condition = (
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool.min == 1 &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool.schedule == [{ days = ["Mon", "Tue", "Wed", "Thu", "Fri"], from = 7, to = 19, min = 3 }] &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool.tz == "Europe/Paris" &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool.idle_min == 0 &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool.max_builds == 50 &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool.max_age_h == 168 &&
      jsondecode(module.orchestrator.lambda_config_json).actions[0].pool.hibernate == false &&
      jsondecode(module.orchestrator.lambda_config_json).actions[2].pool.hibernate == true &&
      jsondecode(module.orchestrator.lambda_config_json).actions[2].pool.max_builds == 1 &&
      jsondecode(module.orchestrator.lambda_config_json).actions[2].pool.max_age_h == 1416 &&
      jsondecode(module.orchestrator.lambda_config_json).actions[2].pool.schedule == [] &&
      jsondecode(module.orchestrator.lambda_config_json).actions[1].pool == null
    )
    error_message = "Each pool's settings, with their defaults applied once, must reach the functions; an ephemeral action has no pool."
  }
}

run "rejects_a_cap_of_zero" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", max_concurrent_builds = 0 } }
  }
  expect_failures = [var.actions]
}

run "rejects_a_cap_above_500_or_fractional" {
  command = plan
  variables {
    actions = {
      a = { provider = "EC2-A", max_concurrent_builds = 501 }
      b = { provider = "EC2-B", max_concurrent_builds = 2.5 }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_an_unknown_strategy" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "pooled" } }
  }
  expect_failures = [var.actions]
}

run "rejects_a_minimum_above_the_cap" {
  command = plan
  variables {
    actions = {
      linux = {
        provider              = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        max_concurrent_builds = 2, pool = { min_ready = 3 }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_a_schedule_minimum_above_the_cap" {
  command = plan
  variables {
    actions = {
      linux = {
        provider              = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        max_concurrent_builds = 2, pool = { schedule = [{ days = ["Mon"], from_hour = 7, to_hour = 19, min_ready = 3 }] }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_a_warm_pool_without_image_id" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", instance_type = "t3.large", strategy = "warm", pool = { min_ready = 1 } } }
  }
  expect_failures = [var.actions]
}

run "rejects_a_stopped_pool_without_instance_type" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", strategy = "stopped" } }
  }
  expect_failures = [var.actions]
}

run "rejects_a_minimum_on_an_ephemeral_action" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", pool = { min_ready = 1 } } }
  }
  expect_failures = [var.actions]
}

run "rejects_hibernate_on_a_warm_pool" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "m6i.large", strategy = "warm",
        pool     = { hibernate = true }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_hibernate_on_a_family_without_hibernation" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t4g.large", strategy = "stopped",
        pool     = { hibernate = true }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_hibernate_on_a_metal_size" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "m6i.metal", strategy = "stopped",
        pool     = { hibernate = true }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_a_schedule_window_ending_before_it_starts" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        pool     = { schedule = [{ days = ["Mon"], from_hour = 19, to_hour = 7, min_ready = 1 }] }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_a_schedule_window_of_no_time" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        pool     = { schedule = [{ days = ["Mon"], from_hour = 7, to_hour = 7, min_ready = 1 }] }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_a_schedule_day_that_is_not_a_day" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        pool     = { schedule = [{ days = ["Monday"], from_hour = 7, to_hour = 19, min_ready = 1 }] }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_a_timezone_that_is_not_a_name" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        pool     = { timezone = "+02:00" }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_recycling_limits_out_of_range" {
  command = plan
  variables {
    actions = {
      a = {
        provider = "EC2-A", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        pool     = { max_builds = 0 }
      }
      b = {
        provider = "EC2-B", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "stopped",
        pool     = { max_age_hours = 1417 }
      }
      c = {
        provider = "EC2-C", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        pool     = { max_idle_minutes = -1 }
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_a_long_reset_command" {
  command = plan
  variables {
    actions = {
      linux = {
        provider = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        pool     = { reset_command = join("", [for i in range(501) : "x"]) }
      }
    }
  }
  expect_failures = [var.actions]
}

# Purchase: instance types, purchase option, allocation strategy and interruptions. Each rejected row changes one
# setting of an accepted configuration.

run "accepts_spot_with_instance_types_and_strategies" {
  command = plan
  variables {
    allowed_instance_types = ["t3.*", "m6i.*", "c7g.?xlarge"]
    actions = {
      spot = {
        provider                       = "EC2-Spot", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "warm",
        instance_types                 = ["m6i.large", "t3.xlarge"], purchase_option = "spot", allocation_strategy = "capacity-optimized-prioritized",
        interruptions_before_on_demand = 0
      }
      fallback = { provider = "EC2-Fallback", instance_types = ["c7g.2xlarge"], purchase_option = "spot-then-on-demand" }
      cheap    = { provider = "EC2-Cheap", instance_types = [for size in ["large", "xlarge"] : "t3.${size}"], allocation_strategy = "lowest-price", interruptions_before_on_demand = 5 }
    }
  }

  assert {
    condition = (
      [for action in jsondecode(module.orchestrator.lambda_config_json).actions : "${action.key}:${action.purchase}:${action.alloc}:${action.od_after}:${join(",", action.types)}"] == [
        "cheap:on-demand:lowest-price:5:t3.large,t3.xlarge",
        "fallback:spot-then-on-demand:price-capacity-optimized:2:c7g.2xlarge",
        "spot:spot:capacity-optimized-prioritized:0:m6i.large,t3.xlarge",
      ]
    )
    error_message = "Each action's instance types, purchase option, resolved allocation strategy and interruption budget must reach the functions."
  }
}

run "rejects_an_unknown_purchase_option" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", purchase_option = "reserved" } }
  }
  expect_failures = [var.actions]
}

run "rejects_a_spot_strategy_for_on_demand" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", allocation_strategy = "price-capacity-optimized" } }
  }
  expect_failures = [var.actions]
}

run "rejects_an_on_demand_strategy_for_spot" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", purchase_option = "spot-then-on-demand", allocation_strategy = "prioritized" } }
  }
  expect_failures = [var.actions]
}

run "rejects_spot_on_a_stopped_pool" {
  command = plan
  variables {
    actions = {
      linux = {
        provider        = "EC2-Linux", image_id = "ami-0123456789abcdef0", instance_type = "t3.large", strategy = "stopped",
        purchase_option = "spot"
      }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_interruptions_out_of_range" {
  command = plan
  variables {
    actions = {
      a = { provider = "EC2-A", purchase_option = "spot", interruptions_before_on_demand = 6 }
      b = { provider = "EC2-B", purchase_option = "spot", interruptions_before_on_demand = 1.5 }
    }
  }
  expect_failures = [var.actions]
}

run "rejects_more_than_20_instance_types" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", instance_types = [for size in range(21) : "m6i.${size}xlarge"] } }
  }
  expect_failures = [var.actions]
}

run "rejects_an_instance_type_that_is_not_one" {
  command = plan
  variables {
    actions = { linux = { provider = "EC2-Linux", instance_types = ["t3.large", "large"] } }
  }
  expect_failures = [var.actions]
}

run "rejects_an_instance_type_outside_the_allowed_ones" {
  command = plan
  variables {
    allowed_instance_types = ["t3.*", "c7g.?xlarge"]
    actions                = { linux = { provider = "EC2-Linux", instance_types = ["t3.large", "c7g.12xlarge"] } }
  }
  expect_failures = [output.action_types]
}

run "rejects_a_tag_key_instance_metadata_cannot_show" {
  command = plan
  variables {
    tags = { "team/owner" = "builds" }
  }
  expect_failures = [var.tags]
}
