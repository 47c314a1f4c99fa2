data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  region = data.aws_region.current.name
  console_host = lookup({
    "aws-cn"     = "console.amazonaws.cn"
    "aws-us-gov" = "console.amazonaws-us-gov.com"
  }, data.aws_partition.current.partition, "console.aws.amazon.com")

  # The validate function matches instance types with shell-style patterns; the same check, as regexes, at plan time.
  instance_type_regexes = [
    for pattern in var.allowed_instance_types :
    "^${replace(replace(replace(pattern, ".", "\\."), "*", ".*"), "?", ".")}$"
  ]
}

# CodePipeline has no update API for action types: any change here replaces the type, and a deleted type's version
# can only be re-created with an identical definition. So the definition depends only on whether an action has a
# default image and instance type, never on their values (those live in the functions' configuration): a new AMI
# in a default does not touch the action type.
resource "aws_codepipeline_custom_action_type" "this" {
  for_each = var.actions

  category      = each.value.category
  provider_name = each.value.provider
  version       = each.value.version

  configuration_property {
    name        = "ImageId"
    key         = true
    required    = each.value.image_id == null
    secret      = false
    queryable   = false
    type        = "String"
    description = "AMI to launch for the build."
  }

  configuration_property {
    name        = "InstanceType"
    key         = true
    required    = each.value.instance_type == null
    secret      = false
    queryable   = false
    type        = "String"
    description = "EC2 instance type of the builder."
  }

  configuration_property {
    name        = "Command"
    key         = false
    required    = true
    secret      = false
    queryable   = false
    type        = "String"
    description = "Build script: bash on Linux, PowerShell on Windows. Runs in the unzipped input artifact."
  }

  configuration_property {
    name        = "WorkingDirectory"
    key         = false
    required    = false
    secret      = false
    queryable   = false
    type        = "String"
    description = "Directory the command runs in: absolute, or relative to the job's workspace."
  }

  configuration_property {
    name        = "OutputArtifactPath"
    key         = false
    required    = false
    secret      = false
    queryable   = false
    type        = "String"
    description = "File or directory, relative to the working directory, zipped as the output artifact."
  }

  configuration_property {
    name        = "TimeoutMinutes"
    key         = false
    required    = false
    secret      = false
    queryable   = false
    type        = "Number"
    description = "Build timeout in minutes."
  }

  configuration_property {
    name        = "RootVolumeGiB"
    key         = false
    required    = false
    secret      = false
    queryable   = false
    type        = "Number"
    description = "Size of the encrypted gp3 root volume in GiB."
  }

  input_artifact_details {
    minimum_count = 0
    maximum_count = 1
  }

  output_artifact_details {
    minimum_count = 0
    maximum_count = 1
  }

  settings {
    entity_url_template    = "https://${local.region}.${local.console_host}/systems-manager/documents/${var.document_name}/description?region=${local.region}"
    execution_url_template = "https://${local.region}.${local.console_host}/states/home?region=${local.region}#/v2/executions/details/{ExternalExecutionId}"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = each.value.timeout_minutes == null || try(each.value.timeout_minutes <= var.max_build_timeout_minutes, false)
      error_message = "Action ${each.key}: timeout_minutes (${coalesce(each.value.timeout_minutes, 0)}) exceeds max_build_timeout_minutes (${var.max_build_timeout_minutes})."
    }
    precondition {
      condition     = each.value.instance_type == null || anytrue([for pattern in local.instance_type_regexes : can(regex(pattern, coalesce(each.value.instance_type, "-")))])
      error_message = "Action ${each.key}: instance_type ${coalesce(each.value.instance_type, "-")} matches none of allowed_instance_types; every job would be rejected."
    }
    precondition {
      condition     = each.value.image_id == null || length(var.allowed_image_ids) == 0 || contains(var.allowed_image_ids, coalesce(each.value.image_id, "-"))
      error_message = "Action ${each.key}: image_id ${coalesce(each.value.image_id, "-")} is not in allowed_image_ids; every job would be rejected."
    }
  }
}
