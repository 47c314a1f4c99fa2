# The action_type module on its own: properties, links, the defaults' consistency with the guardrails, and versions:
# one action type per served version, whose registered definition never changes under the pipelines using it.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { id = "eu-west-1" }
  }
}

variables {
  actions = {
    linux   = { category = "Build", provider = "EC2-Linux", version = "1", previous_versions = [], image_id = null, instance_type = "t3.large", timeout_minutes = null }
    windows = { category = "Test", provider = "EC2-Windows", version = "3", previous_versions = ["2", "1"], image_id = "ami-0123456789abcdef0", instance_type = null, timeout_minutes = 120 }
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
      for property in aws_codepipeline_custom_action_type.this["linux/1"].configuration_property : property.name => property.required
      } == {
      ImageId            = true, InstanceType = false, Command = true, WorkingDirectory = false,
      OutputArtifactPath = false, TimeoutMinutes = false, RootVolumeGiB = false
    }
    error_message = "Linux action: ImageId is required (no default), InstanceType is not (default), Command always is."
  }
  assert {
    condition = {
      for property in aws_codepipeline_custom_action_type.this["windows/3"].configuration_property : property.name => property.required
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
      aws_codepipeline_custom_action_type.this["linux/1"].settings[0].execution_url_template == "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{ExternalExecutionId}" &&
      aws_codepipeline_custom_action_type.this["linux/1"].settings[0].entity_url_template == "https://eu-west-1.console.aws.amazon.com/systems-manager/documents/ci-build-run-build/description?region=eu-west-1"
    )
    error_message = "The action's links must open the execution and the SSM document."
  }
  assert {
    condition     = aws_codepipeline_custom_action_type.this["windows/3"].category == "Test" && aws_codepipeline_custom_action_type.this["windows/3"].tags["Team"] == "platform"
    error_message = "Category and tags must pass through."
  }
}

run "one_action_type_per_served_version" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  assert {
    condition     = toset(keys(aws_codepipeline_custom_action_type.this)) == toset(["linux/1", "windows/3", "windows/2", "windows/1"])
    error_message = "Each served version (version and previous_versions) must be its own action type, keyed <action>/<version>."
  }
  assert {
    condition = alltrue([
      for key, action in aws_codepipeline_custom_action_type.this :
      "${action.provider_name}/${action.version}" == "${startswith(key, "linux/") ? "EC2-Linux" : "EC2-Windows"}/${split("/", key)[1]}"
    ])
    error_message = "Each action type must carry its action's provider and its own version."
  }
  assert {
    condition = (
      output.action_types.windows == { category = "Test", owner = "Custom", provider = "EC2-Windows", version = "3" } &&
      output.served_action_types.windows[*].version == ["3", "2", "1"] &&
      output.served_action_types.linux == [{ category = "Build", owner = "Custom", provider = "EC2-Linux", version = "1" }]
    )
    error_message = "action_types must give the current version, served_action_types every served version, current first."
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

# CodePipeline cannot update an action type. These runs register versions (apply, mocked provider), then edit the
# configuration: a registered version keeps its definition, and edits it cannot honour are refused at plan time.

run "register_version_1" {
  command = apply

  module {
    source = "./modules/action_type"
  }

  variables {
    actions = {
      linux = { category = "Build", provider = "EC2-Linux", version = "1", previous_versions = [], image_id = null, instance_type = "t3.large", timeout_minutes = null }
    }
  }
}

run "a_changed_default_value_keeps_the_version" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  variables {
    actions = {
      linux = { category = "Build", provider = "EC2-Linux", version = "1", previous_versions = [], image_id = null, instance_type = "m5.large", timeout_minutes = 90 }
    }
  }

  assert {
    condition     = keys(aws_codepipeline_custom_action_type.this) == ["linux/1"] && output.action_types.linux.version == "1"
    error_message = "A new default value is no new definition: version 1 stays."
  }
}

run "adding_a_default_without_a_new_version_is_refused" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  variables {
    actions = {
      linux = { category = "Build", provider = "EC2-Linux", version = "1", previous_versions = [], image_id = "ami-0123456789abcdef0", instance_type = "t3.large", timeout_minutes = null }
    }
  }

  # Version 1 is registered with ImageId required; a default would make it optional, which needs a new version.
  expect_failures = [aws_codepipeline_custom_action_type.this]
}

run "renaming_the_provider_is_refused" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  variables {
    actions = {
      linux = { category = "Build", provider = "EC2-Linux-Renamed", version = "2", previous_versions = ["1"], image_id = null, instance_type = "t3.large", timeout_minutes = null }
    }
  }

  expect_failures = [aws_codepipeline_custom_action_type.this]
}

run "a_new_version_with_a_default_keeps_version_1_as_registered" {
  command = apply

  module {
    source = "./modules/action_type"
  }

  variables {
    actions = {
      linux = { category = "Build", provider = "EC2-Linux", version = "2", previous_versions = ["1"], image_id = "ami-0123456789abcdef0", instance_type = "t3.large", timeout_minutes = null }
    }
  }

  assert {
    condition = (
      { for p in aws_codepipeline_custom_action_type.this["linux/1"].configuration_property : p.name => p.required if p.name == "ImageId" } == { ImageId = true } &&
      { for p in aws_codepipeline_custom_action_type.this["linux/2"].configuration_property : p.name => p.required if p.name == "ImageId" } == { ImageId = false }
    )
    error_message = "Version 1 must keep ImageId required as registered; version 2, with a default image, makes it optional."
  }
  assert {
    condition     = output.action_types.linux.version == "2" && output.served_action_types.linux[*].version == ["2", "1"]
    error_message = "Pipelines must be handed version 2 while version 1 is still served."
  }
}

run "removing_a_default_a_previous_version_relies_on_is_refused" {
  command = plan

  module {
    source = "./modules/action_type"
  }

  variables {
    actions = {
      linux = { category = "Build", provider = "EC2-Linux", version = "3", previous_versions = ["2", "1"], image_id = null, instance_type = "t3.large", timeout_minutes = null }
    }
  }

  # Version 2 lets pipelines omit ImageId: its jobs need the default image while it is served.
  expect_failures = [aws_codepipeline_custom_action_type.this]
}

run "removing_the_default_with_the_version_that_relied_on_it" {
  command = apply

  module {
    source = "./modules/action_type"
  }

  variables {
    actions = {
      linux = { category = "Build", provider = "EC2-Linux", version = "3", previous_versions = ["1"], image_id = null, instance_type = "t3.large", timeout_minutes = null }
    }
  }

  assert {
    condition     = toset(keys(aws_codepipeline_custom_action_type.this)) == toset(["linux/3", "linux/1"])
    error_message = "Version 2 must be gone, 1 and 3 served."
  }
  assert {
    condition = alltrue([
      for key in ["linux/1", "linux/3"] :
      { for p in aws_codepipeline_custom_action_type.this[key].configuration_property : p.name => p.required if p.name == "ImageId" } == { ImageId = true }
    ])
    error_message = "Versions 1 and 3 both require ImageId."
  }
}
