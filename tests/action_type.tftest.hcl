# The action_type module on its own: properties, links and the defaults' consistency with the guardrails.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
}

variables {
  actions = {
    linux   = { category = "Build", provider = "EC2-Linux", version = "1", image_id = null, instance_type = "t3.large", timeout_minutes = null }
    windows = { category = "Test", provider = "EC2-Windows", version = "1", image_id = "ami-0123456789abcdef0", instance_type = null, timeout_minutes = 120 }
  }
  max_build_timeout_minutes = 480
  allowed_image_ids         = []
  allowed_instance_types    = ["t3.*", "m5.*"]
  document_name             = "ci-build-run-build"
  tags                      = { Team = "platform" }
}

run "properties_follow_the_defaults" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  assert {
    condition = {
      for property in aws_codepipeline_custom_action_type.this["linux"].configuration_property : property.name => property.required
      } == {
      ImageId            = true, InstanceType = false, Command = true, WorkingDirectory = false,
      OutputArtifactPath = false, TimeoutMinutes = false, RootVolumeGiB = false
    }
    error_message = "Linux action: ImageId is required (no default), InstanceType is not (default), Command always is."
  }
  assert {
    condition = {
      for property in aws_codepipeline_custom_action_type.this["windows"].configuration_property : property.name => property.required
    }["ImageId"] == false
    error_message = "Windows action: ImageId has a default, so it is optional."
  }
  assert {
    condition = alltrue([
      for action in aws_codepipeline_custom_action_type.this :
      action.input_artifact_details[0].maximum_count == 1 && action.output_artifact_details[0].maximum_count == 1 &&
      action.input_artifact_details[0].minimum_count == 0 && action.output_artifact_details[0].minimum_count == 0
    ])
    error_message = "Each action takes 0..1 input and 0..1 output artifacts."
  }
  assert {
    condition = (
      aws_codepipeline_custom_action_type.this["linux"].settings[0].execution_url_template == "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{ExternalExecutionId}" &&
      aws_codepipeline_custom_action_type.this["linux"].settings[0].entity_url_template == "https://eu-west-1.console.aws.amazon.com/systems-manager/documents/ci-build-run-build/description?region=eu-west-1"
    )
    error_message = "The action's links must open the execution and the SSM document."
  }
  assert {
    condition     = aws_codepipeline_custom_action_type.this["windows"].category == "Test" && aws_codepipeline_custom_action_type.this["windows"].tags["Team"] == "platform"
    error_message = "Category and tags must pass through."
  }
}

run "default_instance_type_outside_the_guardrail_is_refused" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  variables {
    allowed_instance_types = ["c7g.*"]
  }

  expect_failures = [aws_codepipeline_custom_action_type.this]
}

run "default_image_outside_the_allowed_list_is_refused" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  variables {
    allowed_image_ids = ["ami-0fedcba9876543210"]
  }

  expect_failures = [aws_codepipeline_custom_action_type.this]
}

run "default_timeout_over_the_maximum_is_refused" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  variables {
    max_build_timeout_minutes = 60
  }

  expect_failures = [aws_codepipeline_custom_action_type.this]
}
