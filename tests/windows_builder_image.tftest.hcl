# The Windows builder image example, planned against a mocked provider.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
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

run "builds_windows_server_2022_with_the_base_images_and_fast_launch" {
  command = plan

  module {
    source = "./examples/windows-builder-image"
  }

  assert {
    condition     = aws_imagebuilder_image_recipe.this.parent_image == "arn:aws:imagebuilder:us-east-1:aws:image/windows-server-2022-english-full-base-x86/x.x.x"
    error_message = "By default the recipe must start from the newest managed Windows Server 2022 image (x.x.x)."
  }
  assert {
    condition = [for c in aws_imagebuilder_image_recipe.this.component : [for p in c.parameter : p.value] if length(c.parameter) > 0] == [
      ["27.5.1"], ["mcr.microsoft.com/windows/servercore:ltsc2022,mcr.microsoft.com/windows/nanoserver:ltsc2022"],
    ]
    error_message = "The recipe must install Docker and pull servercore and nanoserver ltsc2022 by default."
  }
  assert {
    condition     = length(aws_imagebuilder_image_recipe.this.component) == 4 && !contains(keys(aws_imagebuilder_component.this), "mirror")
    error_message = "Without mirror_to_ecr: containers, docker, base images, SSM Agent check; no mirror."
  }
  assert {
    condition     = one(one(aws_imagebuilder_image_recipe.this.block_device_mapping).ebs).volume_size == 60 && one(one(aws_imagebuilder_image_recipe.this.block_device_mapping).ebs).encrypted == "true"
    error_message = "The image's root volume must be 60 GiB, encrypted, by default."
  }
  assert {
    condition = alltrue([for d in aws_imagebuilder_distribution_configuration.this.distribution : alltrue([
      for f in d.fast_launch_configuration : f.enabled && f.account_id == "123456789012" && f.max_parallel_launches == 6 && f.snapshot_configuration[0].target_resource_count == 5
    ]) && length(d.fast_launch_configuration) == 1])
    error_message = "The AMI must be distributed with Fast Launch enabled in this account."
  }
  assert {
    condition     = aws_imagebuilder_image_pipeline.this.schedule[0].schedule_expression == "cron(0 6 ? * thu *)" && aws_imagebuilder_image_pipeline.this.schedule[0].pipeline_execution_start_condition == "EXPRESSION_MATCH_ONLY"
    error_message = "The pipeline must rebuild weekly whether or not the parent image changed (the base images change on their own)."
  }
  assert {
    condition     = aws_imagebuilder_infrastructure_configuration.this.instance_metadata_options[0].http_tokens == "required" && aws_imagebuilder_infrastructure_configuration.this.terminate_instance_on_failure
    error_message = "Build instances must require IMDSv2 and be terminated on failure."
  }
  assert {
    condition     = strcontains(aws_imagebuilder_component.this["base-images"].data, "{{ BaseImages }}") && strcontains(aws_imagebuilder_component.this["base-images"].data, "docker pull")
    error_message = "The base-images component must carry components/pull-base-images.ps1 with its parameter."
  }
  assert {
    condition     = output.image_id_parameter_name == "/win-builder/image-id" && output.mirror_repository_urls == {}
    error_message = "The image ID goes to /<prefix>/image-id; no mirror by default."
  }
}

run "mirrors_the_base_images_into_ecr_when_asked" {
  command = plan

  module {
    source = "./examples/windows-builder-image"
  }

  variables {
    mirror_to_ecr = true
    subnet_id     = "subnet-0123456789abcdef0"
  }

  assert {
    condition     = toset([for r in aws_ecr_repository.mirror : r.name]) == toset(["win-builder/windows/nanoserver", "win-builder/windows/servercore"])
    error_message = "Each base image must get a repository named after its path."
  }
  assert {
    condition     = length(aws_imagebuilder_image_recipe.this.component) == 5 && length(aws_iam_role_policy.mirror) == 1
    error_message = "The mirror component and the push policy come with mirror_to_ecr."
  }
  assert {
    condition     = length(aws_launch_template.fast_launch) == 1 && aws_imagebuilder_infrastructure_configuration.this.subnet_id == "subnet-0123456789abcdef0"
    error_message = "With a subnet, the build and Fast Launch's pre-provisioning run in it."
  }
}

run "refuses_base_images_of_another_windows_build" {
  command = plan

  module {
    source = "./examples/windows-builder-image"
  }

  variables {
    base_images = ["mcr.microsoft.com/windows/servercore:ltsc2019"]
  }

  expect_failures = [var.base_images]
}

run "refuses_a_root_volume_without_room_for_the_images" {
  command = plan

  module {
    source = "./examples/windows-builder-image"
  }

  variables {
    root_volume_size_gib = 40
  }

  expect_failures = [var.root_volume_size_gib]
}

run "refuses_graviton_build_instances" {
  command = plan

  module {
    source = "./examples/windows-builder-image"
  }

  variables {
    build_instance_types = ["m7g.xlarge"]
  }

  expect_failures = [var.build_instance_types]
}
