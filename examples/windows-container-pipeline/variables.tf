variable "region" {
  description = "AWS Region to deploy the example into."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "win-containers"
}

variable "image_id" {
  description = "AMI the builds run on. Null: the latest Windows Server 2022 with Containers AMI (its Docker runs ltsc2022 images)."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "Instance type of the builders (x86_64: Windows containers)."
  type        = string
  default     = "m5.large"
}

variable "vpc_cidr_block" {
  description = "CIDR block of the example's VPC; the first /24 is the public subnet, the second the builders' private one."
  type        = string
  default     = "10.43.0.0/16"
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
  description = "Ready instances a warm or stopped pool keeps (idle running for warm, stopped for stopped); 0 for ephemeral. Instances launched beyond it for a burst are retired after 10 idle minutes."
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
