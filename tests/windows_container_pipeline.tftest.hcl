# The Windows example's image and capacity inputs, planned against a mocked provider: where the AMI comes from (stock,
# any AMI ID, the builder image's SSM parameter), the root volume, and the pools, hibernation included.

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
  # What the windows-builder-image example's distribution writes: the newest AMI's ID.
  mock_data "aws_ssm_parameter" {
    defaults = { insecure_value = "ami-0fedcba9876543210", value = "ami-0fedcba9876543210", type = "String" }
  }
}

run "defaults_to_the_stock_ami_fresh_per_job_on_100_gib" {
  command = plan

  module {
    source = "./examples/windows-container-pipeline"
  }

  assert {
    condition     = output.image_id == "ami-0123456789abcdef0" && length(data.aws_ami.windows_2022_containers) == 1 && length(data.aws_ssm_parameter.image_id) == 0
    error_message = "Without image_id or image_id_parameter_name the example must look up the stock AMI, and read no parameter."
  }
  assert {
    condition = output.capacity == {
      strategy              = "ephemeral"
      min_ready             = 0
      hibernate             = false
      max_idle_minutes      = 10
      max_concurrent_builds = 10
      instance_type         = "m5.large"
      root_volume_size_gib  = 100
    }
    error_message = "By default: ephemeral builders, no pool, a cap of 10, m5.large with a 100 GiB root volume."
  }
}

run "reads_the_builder_image_from_its_parameter_and_keeps_a_warm_pool" {
  command = plan

  module {
    source = "./examples/windows-container-pipeline"
  }

  variables {
    image_id_parameter_name = "/win-builder/image-id"
    root_volume_size_gib    = 60
    capacity_strategy       = "warm"
    pool_min_ready          = 2
    pool_max_idle_minutes   = 30
    max_concurrent_builds   = 4
  }

  assert {
    condition     = output.image_id == "ami-0fedcba9876543210" && data.aws_ssm_parameter.image_id[0].name == "/win-builder/image-id"
    error_message = "The action must run the AMI the builder image's parameter holds."
  }
  assert {
    condition     = length(data.aws_ami.windows_2022_containers) == 0
    error_message = "With a parameter the stock AMI must not be looked up."
  }
  assert {
    condition     = output.capacity.strategy == "warm" && output.capacity.min_ready == 2 && output.capacity.max_idle_minutes == 30 && output.capacity.max_concurrent_builds == 4 && output.capacity.root_volume_size_gib == 60
    error_message = "The warm pool's settings must reach the action."
  }
}

run "runs_any_ami_id_in_a_hibernating_stopped_pool_of_16_gib_instances" {
  command = plan

  module {
    source = "./examples/windows-container-pipeline"
  }

  variables {
    image_id          = "ami-0aaaabbbbccccdddd"
    instance_type     = "m5.xlarge" # 4 vCPUs x 4 GiB: 16 GiB, AWS's limit for Windows
    capacity_strategy = "stopped"
    pool_min_ready    = 1
    pool_hibernate    = true
  }

  assert {
    condition     = output.image_id == "ami-0aaaabbbbccccdddd" && length(data.aws_ami.windows_2022_containers) == 0 && length(data.aws_ssm_parameter.image_id) == 0
    error_message = "An AMI ID must be used as given, with no look-up."
  }
  assert {
    condition     = output.capacity.strategy == "stopped" && output.capacity.hibernate
    error_message = "The hibernating stopped pool must reach the action."
  }
}

# The memory table at its edges, one instance type per branch of memory_gib (guardrails.py): a class (c, r, m) and a
# burstable size (t3), each at most 16 GiB, plans (the families of their own, c4 or r4, are not among the module's
# allowed_instance_types; tests/test_windows_example_tables.py holds the tables equal).
run "hibernates_c5_2xlarge_of_16_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type     = "c5.2xlarge"
    capacity_strategy = "stopped"
    pool_min_ready    = 1
    pool_hibernate    = true
  }
}

run "hibernates_r5_large_of_16_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type     = "r5.large"
    capacity_strategy = "stopped"
    pool_hibernate    = true
  }
}

run "hibernates_t3_xlarge_of_16_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type     = "t3.xlarge"
    capacity_strategy = "stopped"
    pool_hibernate    = true
  }
}

run "hibernates_c6i_2xlarge_of_16_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type     = "c6i.2xlarge"
    capacity_strategy = "stopped"
    pool_hibernate    = true
  }
}

# --- Refused at plan time -------------------------------------------------------------------------------------------

run "refuses_an_ami_id_and_a_parameter_together" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    image_id                = "ami-0aaaabbbbccccdddd"
    image_id_parameter_name = "/win-builder/image-id"
  }
  expect_failures = [data.aws_ssm_parameter.image_id]
}

run "refuses_an_image_id_that_is_not_an_ami_id" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    image_id = "ami-123"
  }
  expect_failures = [var.image_id]
}

run "refuses_a_parameter_name_that_is_not_a_path" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    image_id_parameter_name = "win-builder image"
  }
  expect_failures = [var.image_id_parameter_name]
}

run "refuses_a_root_volume_under_50_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    root_volume_size_gib = 40
  }
  expect_failures = [var.root_volume_size_gib]
}

run "refuses_a_graviton_instance_type" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type = "m7g.large"
  }
  expect_failures = [var.instance_type]
}

run "refuses_an_unknown_capacity_strategy" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    capacity_strategy = "spot"
  }
  expect_failures = [var.capacity_strategy]
}

run "refuses_a_negative_idle_time" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    capacity_strategy     = "warm"
    pool_min_ready        = 1
    pool_max_idle_minutes = -1
  }
  expect_failures = [var.pool_max_idle_minutes]
}

# Hibernation with a warm or an ephemeral action: the module's own validation of actions refuses it, with its message.

run "refuses_hibernating_m5_2xlarge_of_32_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type     = "m5.2xlarge"
    capacity_strategy = "stopped"
    pool_hibernate    = true
  }
  expect_failures = [aws_codepipeline.this]
}

run "refuses_hibernating_t3_2xlarge_of_32_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type     = "t3.2xlarge"
    capacity_strategy = "stopped"
    pool_hibernate    = true
  }
  expect_failures = [aws_codepipeline.this]
}

run "refuses_hibernating_r5_xlarge_of_32_gib" {
  command = plan
  module {
    source = "./examples/windows-container-pipeline"
  }
  variables {
    instance_type     = "r5.xlarge"
    capacity_strategy = "stopped"
    pool_hibernate    = true
  }
  expect_failures = [aws_codepipeline.this]
}
