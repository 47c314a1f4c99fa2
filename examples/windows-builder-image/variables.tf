variable "region" {
  description = "AWS Region to build and distribute the image in."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (2-32 lowercase letters, digits and hyphens, starting with a letter)."
  type        = string
  default     = "win-builder"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-32 characters: lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "base_images" {
  description = "Container images pulled into the AMI, so that builds start with them cached. Windows Server 2022 hosts run process-isolated containers of their own build only: each tag must be ltsc2022 or a 10.0.20348 build."
  type        = list(string)
  default = [
    "mcr.microsoft.com/windows/servercore:ltsc2022",
    "mcr.microsoft.com/windows/nanoserver:ltsc2022",
  ]

  validation {
    condition     = length(var.base_images) > 0 && length(distinct(var.base_images)) == length(var.base_images)
    error_message = "base_images must list at least one image, each once."
  }

  validation {
    condition     = alltrue([for image in var.base_images : can(regex("^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:(ltsc2022|10\\.0\\.20348(\\.[0-9]+)?)(-[a-z0-9.-]+)?$", image))])
    error_message = "Each base image must be registry/path:tag with a Windows Server 2022 tag (ltsc2022, 10.0.20348 or 10.0.20348.<revision>, optionally followed by -suffix): the host is Windows Server 2022, and process isolation needs the container's build to match it."
  }
}

variable "parent_image" {
  description = "Image the recipe starts from: an Image Builder image ARN or an AMI ID of Windows Server 2022. Null: Amazon's managed Windows Server 2022 English Full Base image at version x.x.x, so that each scheduled build starts from the newest one."
  type        = string
  default     = null

  validation {
    condition     = var.parent_image == null || can(regex("^(ami-[0-9a-f]{8,17}|arn:aws[a-z-]*:imagebuilder:[a-z0-9-]+:(aws|[0-9]{12}):image/windows-server-2022-.+)$", var.parent_image))
    error_message = "parent_image must be an AMI ID or an Image Builder image ARN of Windows Server 2022 (image/windows-server-2022-...), or null."
  }
}

variable "docker_version" {
  description = "Docker Engine version installed from download.docker.com's static Windows binaries (docker-<version>.zip)."
  type        = string
  default     = "27.5.1"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.docker_version))
    error_message = "docker_version must be a version such as 27.5.1."
  }
}

variable "root_volume_size_gib" {
  description = "Root volume of the image (GiB, encrypted gp3). Builds on it need at least this much (the action's root_volume_size_gib): the pulled images stay on it, with room left for builds."
  type        = number
  default     = 60

  validation {
    condition     = var.root_volume_size_gib >= 50 && var.root_volume_size_gib <= 16384 && floor(var.root_volume_size_gib) == var.root_volume_size_gib
    error_message = "root_volume_size_gib must be a whole number from 50 to 16384: the Windows system volume is 30 GiB, the base images and builds need the rest."
  }
}

variable "build_instance_types" {
  description = "Instance types Image Builder may build the image on (x86_64: Windows)."
  type        = list(string)
  default     = ["m5.xlarge", "m6i.xlarge"]

  validation {
    condition     = length(var.build_instance_types) > 0 && alltrue([for type in var.build_instance_types : can(regex("^[a-z0-9-]+\\.[a-z0-9]+$", type))])
    error_message = "build_instance_types must list instance types such as m5.xlarge."
  }

  validation {
    condition     = alltrue([for type in var.build_instance_types : !can(regex("^(a1|[a-z]+[0-9]+g[a-z]*(-[a-z0-9]+)?)\\.", type))])
    error_message = "build_instance_types must be x86_64 types: Graviton types (a g after the generation: t4g, m7g, c6gd...) cannot run Windows."
  }
}

variable "subnet_id" {
  description = "Subnet the image is built in and Fast Launch pre-provisions in; it needs a route to the internet (mcr.microsoft.com, download.docker.com). Null: the default VPC (both Image Builder and Fast Launch then need one)."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id must be a subnet ID (subnet-...) or null."
  }
}

variable "schedule_expression" {
  description = "When the pipeline rebuilds the image, in Image Builder's cron syntax (UTC unless schedule_timezone). The default, every Thursday 06:00, follows Microsoft's monthly base-image updates (Patch Tuesday) within the week; the build runs whether or not the parent AMI changed, since the base images change on their own."
  type        = string
  default     = "cron(0 6 ? * thu *)"

  validation {
    condition     = can(regex("^cron\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be an Image Builder cron expression: cron(...)."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone of schedule_expression."
  type        = string
  default     = "Etc/UTC"
}

variable "fast_launch_snapshots" {
  description = "Pre-provisioned snapshots EC2 Fast Launch keeps ready for the image (each launch uses one; EC2 replenishes them). Each costs its EBS snapshot storage, and each replenishment an instance run."
  type        = number
  default     = 5

  validation {
    condition     = var.fast_launch_snapshots >= 1 && floor(var.fast_launch_snapshots) == var.fast_launch_snapshots
    error_message = "fast_launch_snapshots must be a whole number, 1 or more."
  }
}

variable "fast_launch_max_parallel_launches" {
  description = "Instances EC2 Fast Launch may run at once to pre-provision snapshots (EC2's minimum: 6)."
  type        = number
  default     = 6

  validation {
    condition     = var.fast_launch_max_parallel_launches >= 6 && floor(var.fast_launch_max_parallel_launches) == var.fast_launch_max_parallel_launches
    error_message = "fast_launch_max_parallel_launches must be a whole number, 6 or more (EC2's minimum)."
  }
}

variable "mirror_to_ecr" {
  description = "Also push each base image to a repository of this account's ECR (<name_prefix>/<image path>, e.g. win-builder/windows/servercore), tagged as on MCR, at each build: builds can pull from ECR instead of the internet."
  type        = bool
  default     = false
}
