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
  description = "AMI the builds run on: any Windows Server AMI with Docker and the Containers feature, e.g. one the windows-builder-image example made. Set this or image_id_parameter_name, not both; neither: the latest Amazon Windows Server 2022 with Containers AMI (a stock image: every job pulls its base images)."
  type        = string
  default     = null

  validation {
    condition     = var.image_id == null || can(regex("^ami-[0-9a-f]{8}([0-9a-f]{9})?$", var.image_id))
    error_message = "image_id must be an AMI ID (ami- followed by 8 or 17 hex digits) or null."
  }
}

variable "image_id_parameter_name" {
  description = "SSM parameter holding the AMI ID the builds run on, read at each plan: the windows-builder-image example's image_id_parameter_name output (/<its name_prefix>/image-id), which its pipeline updates after each image build, so an apply moves the action to the newest image; or a public one such as /aws/service/ami-windows-latest/Windows_Server-2022-English-Full-ContainersLatest. Set this or image_id, not both."
  type        = string
  default     = null

  validation {
    condition     = var.image_id_parameter_name == null || can(regex("^(/[A-Za-z0-9_.-]+)+$", var.image_id_parameter_name))
    error_message = "image_id_parameter_name must be an SSM parameter name such as /win-builder/image-id: a leading slash, then letters, digits, '_', '.', '-' and '/' separators."
  }
}

variable "instance_type" {
  description = "Instance type of the builders (x86_64: Windows containers). With pool_hibernate, one of at most 16 GiB of memory (AWS's limit for hibernating Windows)."
  type        = string
  default     = "m5.large"

  validation {
    condition     = can(regex("^[a-z0-9-]+\\.[a-z0-9-]+$", var.instance_type))
    error_message = "instance_type must look like an EC2 instance type, e.g. m5.large."
  }

  validation {
    condition     = !can(regex("^(a1|[a-z]+[0-9]+g[a-z]*(-[a-z0-9]+)?)\\.", var.instance_type))
    error_message = "instance_type must be an x86_64 type: Graviton types (a g after the generation: t4g, m7g, c6gd...) cannot run Windows."
  }
}

variable "root_volume_size_gib" {
  description = "Root volume of each builder (GiB, encrypted gp3): the Windows system volume (30 GiB), the cached base images (servercore alone is several GB, more once extracted) and the build's layers. At least the AMI's own root volume (the windows-builder-image example's root_volume_size_gib output, 60 by default): EC2 refuses a smaller one."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_size_gib >= 50 && var.root_volume_size_gib <= 16384 && floor(var.root_volume_size_gib) == var.root_volume_size_gib
    error_message = "root_volume_size_gib must be a whole number from 50 to 16384: Windows takes 30 GiB, the base images and the builds need the rest (the action refuses a Windows build on less than 50)."
  }
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

variable "pool_hibernate" {
  description = "Hibernate the stopped pool's instances instead of stopping them (capacity_strategy \"stopped\" only): a start then resumes Windows with its memory instead of booting it. AWS hibernates Windows instances of at most 16 GiB of memory (checked at plan time against the table the action uses) from a Windows Server 2022 AMI of 2023-09-13 or later (checked by the action when it launches); the memory image is written to the root volume."
  type        = bool
  default     = false
}

variable "pool_max_idle_minutes" {
  description = "Minutes an instance launched beyond pool_min_ready for a burst may stay idle before it is retired (warm and stopped pools); 0 retires it as soon as it is released."
  type        = number
  default     = 10

  validation {
    condition     = var.pool_max_idle_minutes >= 0 && floor(var.pool_max_idle_minutes) == var.pool_max_idle_minutes
    error_message = "pool_max_idle_minutes must be a whole number, 0 or more."
  }
}
