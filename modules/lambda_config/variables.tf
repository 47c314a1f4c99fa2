variable "name_prefix" {
  description = "The stack's name prefix (`stack` in the configuration: the `ec2-action:stack` tag value)."
  type        = string

  validation {
    condition     = length(var.name_prefix) > 0
    error_message = "name_prefix must not be empty."
  }
}

variable "actions" {
  description = "Actions served, keyed like the root module's `actions`, with defaults already applied (image_id and instance_type may be null); `versions` lists every served version, the current one first. `strategy`, `max_concurrent_builds` and `pool` are the action's capacity; `instance_types`, `purchase_option`, `allocation_strategy` (null: the purchase option's default) and `interruptions_before_on_demand` how it is bought (the root module validates them all; the defaults here are the root's, so a caller that predates them keeps today's behaviour)."
  type = map(object({
    category              = string
    provider              = string
    versions              = list(string)
    image_id              = string
    instance_type         = string
    timeout_minutes       = number
    root_volume_size_gib  = number
    strategy              = optional(string, "ephemeral")
    max_concurrent_builds = optional(number, 10)
    pool = optional(object({
      min_ready = optional(number, 0)
      schedule = optional(list(object({
        days      = list(string)
        from_hour = number
        to_hour   = number
        min_ready = number
      })), [])
      timezone         = optional(string, "UTC")
      hibernate        = optional(bool, false)
      max_builds       = optional(number, 50)
      max_age_hours    = optional(number, 168)
      max_idle_minutes = optional(number, 10)
      reset_command    = optional(string, "")
    }), {})
    instance_types                 = optional(list(string), [])
    purchase_option                = optional(string, "on-demand")
    allocation_strategy            = optional(string)
    interruptions_before_on_demand = optional(number, 2)
  }))

  validation {
    condition     = length(var.actions) > 0 && alltrue([for action in values(var.actions) : length(action.versions) > 0])
    error_message = "Serve at least one action, each with at least one version."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : contains(["ephemeral", "warm", "stopped"], action.strategy)])
    error_message = "Each action's strategy must be ephemeral, warm or stopped."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : action.max_concurrent_builds >= 1 && action.max_concurrent_builds <= 500 && floor(action.max_concurrent_builds) == action.max_concurrent_builds])
    error_message = "Each action's max_concurrent_builds must be a whole number from 1 to 500 (a cap of 0 would queue every job forever)."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : action.strategy == "ephemeral" || (
      action.pool.min_ready <= action.max_concurrent_builds && alltrue([for window in action.pool.schedule : window.min_ready <= action.max_concurrent_builds])
    )])
    error_message = "A pool's minimum (min_ready and every schedule window's) cannot exceed its cap, max_concurrent_builds."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : contains(["on-demand", "spot", "spot-then-on-demand"], action.purchase_option) && (
      action.interruptions_before_on_demand >= 0 && action.interruptions_before_on_demand <= 5 && floor(action.interruptions_before_on_demand) == action.interruptions_before_on_demand
    )])
    error_message = "Each action's purchase_option must be on-demand, spot or spot-then-on-demand, and its interruptions_before_on_demand a whole number from 0 to 5."
  }
}

variable "state_machine_arn" {
  description = "ARN of the state machine the poller starts (its partition picks the console host of links)."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:states:[a-z0-9-]+:[0-9]{12}:stateMachine:.+$", var.state_machine_arn))
    error_message = "state_machine_arn must be a Step Functions state machine ARN."
  }
}

variable "jobs_table_name" {
  description = "Name of the DynamoDB jobs table."
  type        = string

  validation {
    condition     = length(var.jobs_table_name) > 0
    error_message = "jobs_table_name must not be empty."
  }
}

variable "document_name" {
  description = "Name of the SSM document that runs a build."
  type        = string

  validation {
    condition     = length(var.document_name) > 0
    error_message = "document_name must not be empty."
  }
}

variable "build_log_group_name" {
  description = "Log group SendCommand sends build output to."
  type        = string

  validation {
    condition     = length(var.build_log_group_name) > 0
    error_message = "build_log_group_name must not be empty."
  }
}

variable "subnet_ids" {
  description = "Subnets builders launch into, tried in turn on capacity errors."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet."
  }
}

variable "security_group_ids" {
  description = "Security groups attached to every builder."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0
    error_message = "Give at least one security group (the module's own builder group is always one)."
  }
}

variable "allowed_image_ids" {
  description = "AMI IDs jobs may use; empty: any AMI of an allowed owner."
  type        = list(string)

  validation {
    condition     = alltrue([for id in var.allowed_image_ids : length(id) > 0])
    error_message = "allowed_image_ids must not hold empty strings."
  }
}

variable "allowed_image_owners" {
  description = "AMI owners jobs may use."
  type        = list(string)

  validation {
    condition     = length(var.allowed_image_owners) > 0
    error_message = "Allow at least one image owner."
  }
}

variable "allowed_instance_types" {
  description = "Instance type patterns (shell globs) jobs may use."
  type        = list(string)

  validation {
    condition     = length(var.allowed_instance_types) > 0
    error_message = "Allow at least one instance type pattern."
  }
}

variable "default_build_timeout_minutes" {
  description = "Build timeout of a job whose action sets none."
  type        = number

  validation {
    condition     = var.default_build_timeout_minutes > 0
    error_message = "default_build_timeout_minutes must be positive."
  }
}

variable "max_build_timeout_minutes" {
  description = "Longest build timeout a job may ask for."
  type        = number

  validation {
    condition     = var.max_build_timeout_minutes > 0
    error_message = "max_build_timeout_minutes must be positive."
  }
}

variable "ssm_registration_timeout_minutes" {
  description = "How long a new builder may take to come Online in Systems Manager (seconds in the configuration)."
  type        = number

  validation {
    condition     = var.ssm_registration_timeout_minutes > 0
    error_message = "ssm_registration_timeout_minutes must be positive."
  }
}

variable "poll_function_name" {
  description = "Name of the poll function (the report function invokes it for a continuation job)."
  type        = string

  validation {
    condition     = length(var.poll_function_name) > 0
    error_message = "poll_function_name must not be empty."
  }
}

variable "orphan_grace_minutes" {
  description = "Minutes past an instance's ec2-action:deadline tag after which the reaper treats it as overdue (seconds in the configuration)."
  type        = number

  validation {
    condition     = var.orphan_grace_minutes >= 0
    error_message = "orphan_grace_minutes must not be negative."
  }
}

variable "tracing_enabled" {
  description = "Whether the functions trace their AWS calls with the X-Ray SDK (loaded only then)."
  type        = bool
  default     = false
}

variable "pool_table_name" {
  description = "Name of the DynamoDB registry table of instances, leases and the capacity queue (`pool_table` in the configuration)."
  type        = string

  validation {
    condition     = length(var.pool_table_name) > 0
    error_message = "pool_table_name must not be empty."
  }
}

variable "keeper_function_name" {
  description = "Name of the pool keeper function (release nudges it when a pool member retired and the pool is below its minimum)."
  type        = string

  validation {
    condition     = length(var.keeper_function_name) > 0
    error_message = "keeper_function_name must not be empty."
  }
}

variable "launch_templates" {
  description = "The builders' launch templates by platform (Linux and Windows): `{id, version}`, version being the one instances launch with (the latest). A template version is part of a pool's configuration, so a new version rotates the platform's pools."
  type = map(object({
    id      = string
    version = string
  }))

  validation {
    condition     = toset(keys(var.launch_templates)) == toset(["Linux", "Windows"])
    error_message = "launch_templates must name exactly the Linux and the Windows template."
  }

  validation {
    condition     = alltrue([for template in values(var.launch_templates) : length(template.id) > 0 && can(regex("^[1-9][0-9]*$", template.version))])
    error_message = "Each launch template needs an id and a version number (1, 2, ...)."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the module's metrics (the functions write them as Embedded Metric Format lines; the dashboard and the alarms read them)."
  type        = string
  default     = "CodePipelineEc2Action"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1 to 255 letters, digits or . _ / # : - and must not start with AWS/ (reserved for AWS services)."
  }
}

variable "subnet_zones" {
  description = "The Availability Zone of each of subnet_ids (subnet id -> zone name): a capacity error names the subnet, the CapacityErrors metric the zone. A subnet missing here is counted in zone \"unknown\"."
  type        = map(string)
  default     = {}
}
