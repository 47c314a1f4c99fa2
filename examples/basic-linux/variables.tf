variable "region" {
  description = "AWS Region to deploy the example into."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "ec2-build-demo"
}

variable "action_provider" {
  description = "Provider name of the custom action type (unique per account and Region, e.g. one per stack)."
  type        = string
  default     = "EC2-Linux"

  validation {
    condition     = can(regex("^[0-9A-Za-z_-]{1,35}$", var.action_provider))
    error_message = "action_provider must be 1-35 characters: letters, digits, underscores and hyphens."
  }
}

variable "action_version" {
  description = "Version of the action type; the example pipeline takes it from the module's action_types output. Changing the action type's definition needs a new version (see the module's README, \"Changing an action\")."
  type        = string
  default     = "1"

  validation {
    condition     = can(regex("^[0-9A-Za-z_-]{1,9}$", var.action_version))
    error_message = "action_version must be 1-9 characters: letters, digits, underscores and hyphens."
  }
}

variable "action_previous_versions" {
  description = "Older versions of the action type that stay registered and served for pipelines still pinned to them; remove one once no pipeline uses it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for version in var.action_previous_versions : can(regex("^[0-9A-Za-z_-]{1,9}$", version))])
    error_message = "action_previous_versions must be versions of 1-9 characters: letters, digits, underscores and hyphens."
  }
}

variable "image_id" {
  description = "AMI the builds run on. Null: the latest Amazon Linux 2023 AMI for arm64."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "Instance type of the builders (arm64, to match the default AMI)."
  type        = string
  default     = "t4g.medium"
}

variable "vpc_cidr_block" {
  description = "CIDR block of the example's VPC; the first /24 is the public subnet, the second the builders' private one."
  type        = string
  default     = "10.42.0.0/16"
}

variable "ssm_registration_timeout_minutes" {
  description = "How long a new builder may take to come Online in Systems Manager before its job fails (the module's variable of the same name)."
  type        = number
  default     = 15

  validation {
    condition     = var.ssm_registration_timeout_minutes >= 1 && var.ssm_registration_timeout_minutes <= 60 && floor(var.ssm_registration_timeout_minutes) == var.ssm_registration_timeout_minutes
    error_message = "ssm_registration_timeout_minutes must be a whole number from 1 to 60."
  }
}

variable "capacity_strategy" {
  description = "How the action gets its builders: \"ephemeral\" (a fresh instance per job, terminated after it; nothing runs while idle), \"warm\" (a pool of running instances reused between jobs: no boot, instance-hours while idle) or \"stopped\" (a pool of stopped instances started for a job: a start instead of a first boot, only their volumes bill while idle). See the module's README, \"Instance pools\"."
  type        = string
  default     = "ephemeral"

  validation {
    condition     = contains(["ephemeral", "warm", "stopped"], var.capacity_strategy)
    error_message = "capacity_strategy must be \"ephemeral\", \"warm\" or \"stopped\"."
  }
}

variable "pool_min_ready" {
  description = "Ready instances a warm or stopped pool keeps (idle running for warm, stopped for stopped); 0 for ephemeral. Instances launched beyond it for a burst are retired after pool_max_idle_minutes idle minutes."
  type        = number
  default     = 0

  validation {
    condition     = var.pool_min_ready >= 0 && floor(var.pool_min_ready) == var.pool_min_ready
    error_message = "pool_min_ready must be a whole number, 0 or more."
  }
}

variable "max_concurrent_builds" {
  description = "Most instances the action holds at once, building or idle (any strategy); jobs beyond it wait in a first-in first-out queue. At least pool_min_ready."
  type        = number
  default     = 10

  validation {
    condition     = var.max_concurrent_builds >= 1 && var.max_concurrent_builds <= 500 && floor(var.max_concurrent_builds) == var.max_concurrent_builds
    error_message = "max_concurrent_builds must be a whole number from 1 to 500: a cap of 0 would queue every job forever."
  }
}

variable "pool_max_idle_minutes" {
  description = "Minutes a warm or stopped pool keeps an instance beyond pool_min_ready idle before retiring it (0: at the keeper's next pass). A burst's extra instances serve the jobs that follow it this long."
  type        = number
  default     = 10

  validation {
    condition     = var.pool_max_idle_minutes >= 0 && var.pool_max_idle_minutes <= 1440 && floor(var.pool_max_idle_minutes) == var.pool_max_idle_minutes
    error_message = "pool_max_idle_minutes must be a whole number from 0 to 1440."
  }
}

variable "purchase_option" {
  description = "How the builders are bought: \"on-demand\", \"spot\" (an interrupted build runs again from the start on a new instance, within the same pipeline job; on-demand after two interruptions) or \"spot-then-on-demand\" (on-demand at once when no spot capacity is left). See the module's README, \"Spot instances\". Spot does not combine with capacity_strategy \"stopped\"."
  type        = string
  default     = "on-demand"

  validation {
    condition     = contains(["on-demand", "spot", "spot-then-on-demand"], var.purchase_option)
    error_message = "purchase_option must be \"on-demand\", \"spot\" or \"spot-then-on-demand\"."
  }
}

variable "instance_types" {
  description = "Further instance types a launch may use after instance_type, in order of preference (arm64 too, to match the default AMI; within the module's allowed_instance_types): more types and zones to find capacity in, spot capacity above all."
  type        = list(string)
  default     = []
}
