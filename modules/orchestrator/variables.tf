variable "name_prefix" {
  description = "Prefix of every resource name; the `ec2-action:stack` tag value IAM conditions match."
  type        = string
}

variable "actions" {
  description = "Actions served, keyed like the root module's `actions`, with defaults already applied (image_id and instance_type may be null). `versions` lists every registered version of the action (its current one first): each is an action type the poller polls, the STARTED rule matches and PollForJobs is allowed on. `strategy`, `max_concurrent_builds` and `pool` are its capacity; `instance_types`, `purchase_option`, `allocation_strategy` (null: the purchase option's default) and `interruptions_before_on_demand` how its instances are bought. The root module validates them all."
  type = map(object({
    category              = string
    provider              = string
    versions              = list(string)
    image_id              = string
    instance_type         = string
    timeout_minutes       = number
    root_volume_size_gib  = number
    strategy              = string
    max_concurrent_builds = number
    pool = object({
      min_ready = number
      schedule = list(object({
        days      = list(string)
        from_hour = number
        to_hour   = number
        min_ready = number
      }))
      timezone         = string
      hibernate        = bool
      max_builds       = number
      max_age_hours    = number
      max_idle_minutes = number
      reset_command    = string
    })
    instance_types                 = list(string)
    purchase_option                = string
    allocation_strategy            = string
    interruptions_before_on_demand = number
  }))

  validation {
    condition     = alltrue([for action in values(var.actions) : length(action.versions) > 0])
    error_message = "Every action serves at least one version."
  }
}

variable "subnet_ids" {
  description = "Subnets builders launch into, tried in turn on capacity errors."
  type        = list(string)
}

variable "subnet_zones" {
  description = "The Availability Zone of each of subnet_ids (subnet id -> zone name), for the CapacityErrors metric's AvailabilityZone dimension."
  type        = map(string)
  default     = {}
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the module's metrics (validated by the root module and modules/lambda_config)."
  type        = string
  default     = "CodePipelineEc2Action"
}

variable "security_group_ids" {
  description = "Security groups attached to every builder."
  type        = list(string)
}

variable "launch_templates" {
  description = "The builders' launch templates by platform (Linux, Windows): `{id, arn, version}`. Launches (RunInstances and CreateFleet) are allowed with these templates only; version is the one instances launch with (the latest), part of a pool's configuration, so a new version rotates the platform's pools."
  type = map(object({
    id      = string
    arn     = string
    version = string
  }))
}

variable "builder_role_arn" {
  description = "ARN of the builders' IAM role (the only role the acquire function may pass)."
  type        = string
}

variable "document_name" {
  description = "Name of the SSM document that runs a build."
  type        = string
}

variable "document_arn" {
  description = "ARN of the SSM document that runs a build."
  type        = string
}

variable "build_log_group_name" {
  description = "Log group SendCommand sends build output to."
  type        = string
}

variable "allowed_image_ids" {
  description = "AMI IDs jobs may use (checked by the acquire function before it launches); empty: any AMI of an allowed owner."
  type        = list(string)
}

variable "allowed_image_owners" {
  description = "AMI owners jobs may use (checked by the acquire function before it launches)."
  type        = list(string)
}

variable "allowed_instance_types" {
  description = "Instance type patterns (shell globs) jobs may use."
  type        = list(string)
}

variable "default_build_timeout_minutes" {
  description = "Build timeout of a job whose action sets none."
  type        = number
}

variable "max_build_timeout_minutes" {
  description = "Longest build timeout a job may ask for."
  type        = number
}

variable "root_volume_size_gib" {
  description = "Root volume size of a job whose action sets none."
  type        = number
}

variable "ssm_registration_timeout_minutes" {
  description = "How long a new builder may take to come Online in Systems Manager before the job fails."
  type        = number
}

variable "job_sweep_schedule_expression" {
  description = "EventBridge schedule of the sweep (the poll function catching lost events and continuation jobs)."
  type        = string
}

variable "reaper_schedule_expression" {
  description = "EventBridge schedule of the reaper, rate(N minute(s)|hour(s)); the reaper terminates what it marked at least one run earlier."
  type        = string
}

variable "pool_keeper_schedule_expression" {
  description = "EventBridge schedule of the pool keeper (pool minimums, retirement, the capacity queue)."
  type        = string
}

variable "orphan_grace_minutes" {
  description = "Minutes past an instance's ec2-action:deadline tag after which the reaper treats it as overdue."
  type        = number
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the functions' and the state machine's logs."
  type        = number
}

variable "log_kms_key_arn" {
  description = "KMS key encrypting the log groups, or null."
  type        = string
}

variable "lambda_runtime" {
  description = "Python runtime of the functions."
  type        = string

  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.12 or python3.13."
  }
}

variable "lambda_zip_path" {
  description = "Path of the functions' code zip (built by `make build`)."
  type        = string
}

variable "lambda_layer_zip_path" {
  description = "Path of the dependencies layer zip, which every function takes (built by `make build`)."
  type        = string
}

variable "tracing_enabled" {
  description = "Active X-Ray tracing of the state machine and the functions (the functions load the X-Ray SDK only then)."
  type        = bool
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of every role created here, or null."
  type        = string
}

variable "tags" {
  description = "Tags applied to every taggable resource."
  type        = map(string)
}
