# The examples, planned against a mocked provider: their resources' IDs are unknown at plan time, as in a first
# real apply, which catches module arguments that must be known to plan (for_each keys, counts).

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
  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b"] }
  }
  mock_data "aws_ami" {
    defaults = { id = "ami-0123456789abcdef0" }
  }
  mock_data "aws_subnet" {
    defaults = { vpc_id = "vpc-0123456789abcdef0" }
  }
}

run "basic_linux_plans_from_scratch" {
  command = plan

  module {
    source = "./examples/basic-linux"
  }

  assert {
    condition     = output.image_id == "ami-0123456789abcdef0" && output.action_type_id.provider == "EC2-Linux"
    error_message = "The example should default to the looked-up AMI and register EC2-Linux."
  }
}

run "basic_linux_pipeline_follows_the_current_version" {
  command = plan

  module {
    source = "./examples/basic-linux"
  }

  variables {
    action_version           = "2"
    action_previous_versions = ["1"]
  }

  assert {
    condition = (
      output.action_type_id.version == "2" && output.served_action_type_ids[*].version == ["2", "1"] &&
      aws_codepipeline.this.stage[1].action[0].version == "2"
    )
    error_message = "The example's pipeline must use the current version while the previous one is still served."
  }
}

run "windows_container_pipeline_plans_from_scratch" {
  command = plan

  module {
    source = "./examples/windows-container-pipeline"
  }

  assert {
    condition     = output.image_id == "ami-0123456789abcdef0"
    error_message = "The example should default to the looked-up Windows AMI."
  }
}

# The pool variables plan (the module's validations accept them: a pool needs the image, which the examples look up).
run "windows_container_pipeline_can_keep_a_warm_pool" {
  command = plan

  module {
    source = "./examples/windows-container-pipeline"
  }

  variables {
    capacity_strategy     = "warm"
    pool_min_ready        = 2
    max_concurrent_builds = 4
  }
}

run "basic_linux_can_keep_a_stopped_pool" {
  command = plan

  module {
    source = "./examples/basic-linux"
  }

  variables {
    capacity_strategy = "stopped"
    pool_min_ready    = 1
  }
}

# Spot with more instance types: the example's variables reach the module's action and pass its validations (the
# types within the module's default allowed_instance_types).
run "basic_linux_plans_on_spot_with_more_instance_types" {
  command = plan

  module {
    source = "./examples/basic-linux"
  }

  variables {
    purchase_option = "spot-then-on-demand"
    instance_types  = ["t4g.large", "m7g.medium"]
  }

  assert {
    condition     = output.action_type_id.provider == "EC2-Linux"
    error_message = "The example must plan with spot and further instance types."
  }
}

run "basic_linux_refuses_an_unknown_purchase_option" {
  command = plan

  module {
    source = "./examples/basic-linux"
  }

  variables {
    purchase_option = "reserved"
  }

  expect_failures = [var.purchase_option]
}
