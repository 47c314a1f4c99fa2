data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  region = data.aws_region.current.id
  console_host = lookup({
    "aws-cn"     = "console.amazonaws.cn"
    "aws-us-gov" = "console.amazonaws-us-gov.com"
  }, data.aws_partition.current.partition, "console.aws.amazon.com")

  # The validate function matches instance types with shell-style patterns; the same check, as regexes, at plan time.
  instance_type_regexes = [
    for pattern in var.allowed_instance_types :
    "^${replace(replace(replace(pattern, ".", "\\."), "*", ".*"), "?", ".")}$"
  ]

  # The properties of every version. ImageId and InstanceType are required unless the action has a default
  # (unless_default names it); the defaults' values live in the functions' configuration, so a new AMI in a default
  # never touches an action type.
  properties = [
    { name = "ImageId", key = true, required = true, unless_default = "image_id", type = "String", description = "AMI to launch for the build." },
    { name = "InstanceType", key = true, required = true, unless_default = "instance_type", type = "String", description = "EC2 instance type of the builder." },
    { name = "Command", key = false, required = true, unless_default = null, type = "String", description = "Build script: bash on Linux, PowerShell on Windows. Runs in the unzipped input artifact." },
    { name = "WorkingDirectory", key = false, required = false, unless_default = null, type = "String", description = "Directory the command runs in: absolute, or relative to the job's workspace." },
    { name = "OutputArtifactPath", key = false, required = false, unless_default = null, type = "String", description = "File or directory, relative to the working directory, zipped as the output artifact." },
    { name = "TimeoutMinutes", key = false, required = false, unless_default = null, type = "Number", description = "Build timeout in minutes." },
    { name = "RootVolumeGiB", key = false, required = false, unless_default = null, type = "Number", description = "Size of the encrypted gp3 root volume in GiB." },
  ]
  defaulted_properties = [for property in local.properties : property.name if property.unless_default != null]

  # One action type per served version, keyed "<action>/<version>": the current version and every previous one.
  versions = merge([
    for key, action in var.actions : {
      for version in concat([action.version], action.previous_versions) : "${key}/${version}" => {
        action   = key
        current  = version == action.version
        category = action.category
        provider = action.provider
        version  = version
        # Whether each property is required, as this configuration would register it.
        required = {
          for property in local.properties : property.name =>
          property.unless_default == null ? property.required : action[property.unless_default] == null
        }
        image_id        = action.image_id
        instance_type   = action.instance_type
        timeout_minutes = action.timeout_minutes
      }
    }
  ]...)
}

# CodePipeline has no update API for action types and every field of this resource forces a replacement, which
# would delete a version pipelines run on (and a deleted version can only be re-created with an identical
# definition). So a registered version is never replaced: its definition is frozen (ignore_changes), only its tags
# follow, and the postconditions refuse at plan time the edits that a frozen definition cannot honour. Changing an
# action means adding a version; the old one stays registered while it is listed in previous_versions, and
# create_before_destroy makes a new version exist before a removed one is deleted.
resource "aws_codepipeline_custom_action_type" "this" {
  for_each = local.versions

  category      = each.value.category
  provider_name = each.value.provider
  version       = each.value.version

  dynamic "configuration_property" {
    for_each = local.properties
    content {
      name        = configuration_property.value.name
      key         = configuration_property.value.key
      required    = each.value.required[configuration_property.value.name]
      secret      = false
      queryable   = false
      type        = configuration_property.value.type
      description = configuration_property.value.description
    }
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
    create_before_destroy = true
    # Everything but the tags forces a replacement. The links (settings) of a registered version keep the
    # document name it was registered with.
    ignore_changes = [
      category, provider_name, configuration_property, settings, input_artifact_details, output_artifact_details,
    ]

    precondition {
      condition     = each.value.timeout_minutes == null || try(each.value.timeout_minutes <= var.max_build_timeout_minutes, false)
      error_message = "Action ${each.value.action}: timeout_minutes (${coalesce(each.value.timeout_minutes, 0)}) exceeds max_build_timeout_minutes (${var.max_build_timeout_minutes})."
    }
    precondition {
      condition     = each.value.instance_type == null || anytrue([for pattern in local.instance_type_regexes : can(regex(pattern, coalesce(each.value.instance_type, "-")))])
      error_message = "Action ${each.value.action}: instance_type ${coalesce(each.value.instance_type, "-")} matches none of allowed_instance_types; every job would be rejected."
    }
    precondition {
      condition     = each.value.image_id == null || length(var.allowed_image_ids) == 0 || contains(var.allowed_image_ids, coalesce(each.value.image_id, "-"))
      error_message = "Action ${each.value.action}: image_id ${coalesce(each.value.image_id, "-")} is not in allowed_image_ids; every job would be rejected."
    }

    # self is the registered (frozen) definition once the version exists, the new one while it is being created.
    postcondition {
      condition     = self.category == each.value.category && self.provider_name == each.value.provider
      error_message = "Action ${each.value.action}: version ${each.value.version} is registered as ${self.category}/${self.provider_name}, and CodePipeline cannot change a registered action type. For ${each.value.category}/${each.value.provider}, add a new action (a new key in actions) and remove this one once no pipeline uses it."
    }
    postcondition {
      condition = !each.value.current || alltrue([
        for property in self.configuration_property : property.required == lookup(each.value.required, property.name, property.required)
      ])
      error_message = "Action ${each.value.action}: version ${each.value.version} is registered with ${join(" and ", [for property in self.configuration_property : "${property.name} ${property.required ? "required" : "optional"}" if contains(local.defaulted_properties, property.name)])}, and CodePipeline cannot change a registered version: adding or removing a default image_id or instance_type needs a new version. Set version to a new value (and list \"${each.value.version}\" in previous_versions while pipelines still use it), or keep the defaults as they were."
    }
    postcondition {
      condition = each.value.current || alltrue([
        for property in self.configuration_property : property.required || !lookup(each.value.required, property.name, false)
      ])
      error_message = "Action ${each.value.action}: previous version ${each.value.version} lets pipelines omit ${join(" and ", [for property in self.configuration_property : property.name if !property.required && lookup(each.value.required, property.name, false)])}, so the action must keep that default (image_id or instance_type) while the version is served: their jobs would fail. Keep the default, or remove \"${each.value.version}\" from previous_versions once no pipeline uses it."
    }
  }
}

# Every served version of each action, the current one first (outputs, and the orchestrator's list of type ids:
# a reference to the resource, so that a new version exists before the poller polls it and a removed one is deleted
# only after the poller stopped).
locals {
  served_action_types = {
    for key, action in var.actions : key => [
      for version in concat([action.version], action.previous_versions) : {
        category = aws_codepipeline_custom_action_type.this["${key}/${version}"].category
        owner    = "Custom"
        provider = aws_codepipeline_custom_action_type.this["${key}/${version}"].provider_name
        version  = aws_codepipeline_custom_action_type.this["${key}/${version}"].version
      }
    ]
  }
}
