variable "name_prefix" {
  description = "Prefix of every resource name (2-32 lowercase letters, digits and hyphens, starting with a letter). Also the value of the `ec2-action:stack` tag that IAM conditions match on builder instances, so two stacks in one account need two prefixes."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-32 characters: lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }

  validation {
    condition     = !can(regex("^(aws|amazon|amzn)", var.name_prefix))
    error_message = "name_prefix must not start with aws, amazon or amzn (SSM document names cannot)."
  }
}

variable "actions" {
  description = <<-EOT
    CodePipeline custom actions to register, keyed by a short name. Each is `{category = "Build" | "Test",
    provider, version = "1", previous_versions = [], image_id, instance_type, timeout_minutes, root_volume_size_gib}`
    (owner "Custom"). Every version is its own action type: `version` is the one the outputs hand to pipelines,
    `previous_versions` stay registered and served for pipelines still pinned to them until you remove them.
    image_id and instance_type are defaults that make the ImageId and InstanceType action properties optional;
    their values can change freely. CodePipeline cannot change a registered version: to add or remove a default
    image_id or instance_type, set a new `version` (and list the old one in previous_versions while pipelines use
    it); category and provider cannot change (add another action). See "Changing an action" in the README.

    Capacity, per action (all its versions share it): `strategy` is "ephemeral" (default: a fresh instance per job,
    terminated after it), "warm" (a pool of running instances, reused) or "stopped" (a pool of stopped or, with
    `pool.hibernate`, hibernated instances, started for a job). `max_concurrent_builds` (default 10, 1-500) caps the
    instances the action holds, building or idle, with any strategy: jobs beyond it wait in a first-in first-out
    queue, and the wait counts against their timeout. A pool (warm or stopped) holds one configuration, so it needs
    the action's `image_id` and `instance_type`; `pool = {min_ready = 0, schedule = [], timezone = "UTC", hibernate =
    false, max_builds = 50, max_age_hours = 168, max_idle_minutes = 10, reset_command = ""}` sets the ready instances
    kept (idle running for warm, stopped for stopped; at most the cap), time windows overriding that minimum (`{days =
    ["Mon", ...], from_hour = 7, to_hour = 19, min_ready = 3}`, hours in `timezone`, the first matching window wins),
    hibernation (stopped pools, instance families that support it), when an instance is retired (after max_builds
    builds, max_age_hours hours (at most 1416: hibernated instances must restart within 60 days), or max_idle_minutes
    idle above the minimum) and a command run on the instance after each build (at most 500 characters; if it fails,
    the instance is retired). See "Instance pools" in the README.

    Purchase, per action: `instance_types` (default []) lists further instance types after `instance_type`, in order
    of preference (at most 20, each within allowed_instance_types): a launch tries them all in every subnet at once
    (EC2 Fleet), so a type or zone without capacity is passed over. `purchase_option` is "on-demand" (default),
    "spot" or "spot-then-on-demand" (spot, and on-demand at once when no spot capacity is left in any of them).
    `allocation_strategy` picks among them: for spot "price-capacity-optimized" (the default), "capacity-optimized",
    "capacity-optimized-prioritized", "lowest-price" or "diversified"; for on-demand "prioritized" (the default: the
    order given) or "lowest-price"; the on-demand fallback of spot-then-on-demand is always prioritized. A build whose
    spot instance is interrupted runs again from the start on a new instance, in the same pipeline job;
    `interruptions_before_on_demand` (default 2, 0-5) interruptions of one build move it to on-demand. Spot does not
    combine with strategy "stopped" (a one-time spot instance cannot be stopped). See "Spot and capacity fallback"
    in the README.
  EOT
  type = map(object({
    category              = optional(string, "Build")
    provider              = string
    version               = optional(string, "1")
    previous_versions     = optional(list(string), [])
    image_id              = optional(string)
    instance_type         = optional(string)
    timeout_minutes       = optional(number)
    root_volume_size_gib  = optional(number)
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
    condition     = length(var.actions) > 0
    error_message = "Define at least one action."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : can(regex("^[0-9A-Za-z_-]{1,35}$", action.provider))])
    error_message = "Each action's provider must be 1-35 characters: letters, digits, underscores and hyphens."
  }

  validation {
    condition = alltrue(flatten([
      for action in values(var.actions) : [
        for version in concat([action.version], action.previous_versions) : can(regex("^[0-9A-Za-z_-]{1,9}$", version))
      ]
    ]))
    error_message = "Each version and previous version must be 1-9 characters: letters, digits, underscores and hyphens."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : contains(["Build", "Test"], action.category)])
    error_message = "Each action's category must be Build or Test."
  }

  validation {
    condition = length(distinct(flatten([
      for action in values(var.actions) : [for version in concat([action.version], action.previous_versions) : "${action.provider}/${version}"]
    ]))) == length(flatten([for action in values(var.actions) : concat([action.version], action.previous_versions)]))
    error_message = "A provider and version appear twice (in two actions, or in one action's version and previous_versions): every version of every action is an action type of its own."
  }

  validation {
    condition     = length(flatten([for action in values(var.actions) : concat([action.version], action.previous_versions)])) <= 50
    error_message = "CodePipeline allows 50 custom action types per Region: the actions and their previous_versions count one each."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : action.image_id == null || can(regex("^ami-[0-9a-f]{8,17}$", action.image_id))])
    error_message = "An action's image_id must be an AMI ID (ami-...) or null."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : action.instance_type == null || can(regex("^[a-z0-9-]+\\.[a-z0-9-]+$", action.instance_type))])
    error_message = "An action's instance_type must look like an EC2 instance type (e.g. m6i.large) or be null."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : action.timeout_minutes == null || (
      try(action.timeout_minutes >= 1 && action.timeout_minutes <= 1380 && floor(action.timeout_minutes) == action.timeout_minutes, false)
    )])
    error_message = "An action's timeout_minutes must be a whole number from 1 to 1380 (a custom action times out after 24 hours)."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : action.root_volume_size_gib == null || (
      try(action.root_volume_size_gib >= 8 && action.root_volume_size_gib <= 16384 && floor(action.root_volume_size_gib) == action.root_volume_size_gib, false)
    )])
    error_message = "An action's root_volume_size_gib must be a whole number from 8 to 16384 (Windows AMIs need at least 30)."
  }

  # Capacity: strategy, the cap and the pool (README, "Instance pools").
  validation {
    condition     = alltrue([for action in values(var.actions) : contains(["ephemeral", "warm", "stopped"], action.strategy)])
    error_message = "An action's strategy must be \"ephemeral\" (a fresh instance per job), \"warm\" (a pool of running instances) or \"stopped\" (a pool of stopped instances)."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : try(
      action.max_concurrent_builds >= 1 && action.max_concurrent_builds <= 500 && floor(action.max_concurrent_builds) == action.max_concurrent_builds, false
    )])
    error_message = "An action's max_concurrent_builds must be a whole number from 1 to 500: a cap of 0 would queue every job forever."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : action.strategy == "ephemeral" || (action.image_id != null && action.instance_type != null)])
    error_message = "A warm or stopped action needs image_id and instance_type: a pool holds one configuration, launched before any job names an image or an instance type."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : try(alltrue([
      for minimum in concat([action.pool.min_ready], action.pool.schedule[*].min_ready) : minimum >= 0 && floor(minimum) == minimum
    ]), false)])
    error_message = "A pool's min_ready and each schedule window's min_ready must be whole numbers, 0 or more."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : try(alltrue([
      for minimum in concat([action.pool.min_ready], action.pool.schedule[*].min_ready) : minimum <= action.max_concurrent_builds
    ]), false)])
    error_message = "A pool's min_ready and each schedule window's min_ready must be at most the action's max_concurrent_builds: the pool's minimum cannot exceed its cap."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : action.strategy != "ephemeral" || try(alltrue([
      for minimum in concat([action.pool.min_ready], action.pool.schedule[*].min_ready) : minimum == 0
    ]), false)])
    error_message = "A pool's min_ready (or a schedule window's) above 0 needs strategy \"warm\" or \"stopped\": an ephemeral action keeps no instance ready, it launches one per job."
  }

  validation {
    condition = alltrue(flatten([for action in values(var.actions) : [for window in action.pool.schedule : try(
      length(window.days) > 0 && alltrue([for day in window.days : contains(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], day)]) &&
      window.from_hour >= 0 && window.from_hour <= 23 && floor(window.from_hour) == window.from_hour &&
      window.to_hour >= 1 && window.to_hour <= 24 && floor(window.to_hour) == window.to_hour &&
      window.to_hour > window.from_hour, false
    )]]))
    error_message = "Each pool schedule window needs days among \"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\", \"Sat\" and \"Sun\" (at least one), a whole from_hour from 0 to 23 (inclusive) and a whole to_hour from 1 to 24 (exclusive) after it: a window ends on the day it starts (split one across midnight in two)."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : can(regex("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", action.pool.timezone))])
    error_message = "A pool's timezone must be an IANA time zone name such as \"UTC\" or \"Europe/Paris\" (the schedule's hours are in it)."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : !action.pool.hibernate || action.strategy == "stopped"])
    error_message = "pool.hibernate applies to strategy \"stopped\" only: a warm pool's instances keep running, an ephemeral action's are terminated after each job."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : !action.pool.hibernate || try(
      contains([
        "c3", "c4", "c5", "c5a", "c5d", "c6a", "c6g", "c6gd", "c6i", "c6id", "c6in", "c7a", "c7g", "c7i", "c7i-flex",
        "i3", "m3", "m4", "m5", "m5a", "m5ad", "m5d", "m6a", "m6g", "m6gd", "m6i", "m6id", "m6idn", "m6in", "m7a", "m7g",
        "m7i", "m7i-flex", "r3", "r4", "r5", "r5a", "r5ad", "r5d", "r6a", "r6g", "r6gd", "r6i", "r6id", "r6idn", "r6in",
        "r7a", "r7g", "r7i", "r7iz", "t2", "t3", "t3a",
      ], split(".", action.instance_type)[0]) && !strcontains(split(".", action.instance_type)[1], "metal"), false
    )])
    error_message = "pool.hibernate needs an instance type whose family supports hibernation (c3, c4, c5, c5a, c5d, c6a, c6g, c6gd, c6i, c6id, c6in, c7a, c7g, c7i, c7i-flex, i3, m3, m4, m5, m5a, m5ad, m5d, m6a, m6g, m6gd, m6i, m6id, m6idn, m6in, m7a, m7g, m7i, m7i-flex, r3, r4, r5, r5a, r5ad, r5d, r6a, r6g, r6gd, r6i, r6id, r6idn, r6in, r7a, r7g, r7i, r7iz, t2, t3, t3a), and not a .metal size (EC2 refuses to hibernate those). Other types can use a stopped pool without hibernate."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : try(action.pool.max_builds >= 1 && floor(action.pool.max_builds) == action.pool.max_builds, false)])
    error_message = "A pool's max_builds must be a whole number, 1 or more (an instance is retired after that many builds)."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : try(
      action.pool.max_age_hours >= 1 && action.pool.max_age_hours <= 1416 && floor(action.pool.max_age_hours) == action.pool.max_age_hours, false
    )])
    error_message = "A pool's max_age_hours must be a whole number from 1 to 1416 (59 days): EC2 does not keep an instance hibernated beyond 60 days, and every pooled instance is retired before."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : try(action.pool.max_idle_minutes >= 0 && floor(action.pool.max_idle_minutes) == action.pool.max_idle_minutes, false)])
    error_message = "A pool's max_idle_minutes must be a whole number, 0 or more (0: ready instances above the minimum are retired at once)."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : length(action.pool.reset_command) <= 500])
    error_message = "A pool's reset_command must be at most 500 characters: it travels in the functions' configuration, which Lambda limits to 4 KB. Put a longer script on the AMI and call it."
  }

  # Purchase: instance types, purchase option, allocation strategy, interruptions (README, "Spot and capacity
  # fallback"). Whether each instance type is within allowed_instance_types is checked by the action_types output's
  # precondition (a validation cannot read another variable before Terraform 1.9).
  validation {
    condition = alltrue([for action in values(var.actions) : try(
      length(action.instance_types) <= 20 && alltrue([for type in action.instance_types : can(regex("^[a-z0-9-]+\\.[a-z0-9-]+$", type))]), false
    )])
    error_message = "An action's instance_types must be at most 20 EC2 instance types (e.g. m6i.large)."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : contains(["on-demand", "spot", "spot-then-on-demand"], action.purchase_option)])
    error_message = "An action's purchase_option must be \"on-demand\", \"spot\" or \"spot-then-on-demand\"."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : action.allocation_strategy == null || contains(
      action.purchase_option == "on-demand" ? ["prioritized", "lowest-price"] :
      ["price-capacity-optimized", "capacity-optimized", "capacity-optimized-prioritized", "lowest-price", "diversified"],
      coalesce(action.allocation_strategy, "-")
    )])
    error_message = "An action's allocation_strategy must be null or one its purchase option takes: for on-demand \"prioritized\" or \"lowest-price\"; for spot and spot-then-on-demand \"price-capacity-optimized\", \"capacity-optimized\", \"capacity-optimized-prioritized\", \"lowest-price\" or \"diversified\"."
  }

  validation {
    condition     = alltrue([for action in values(var.actions) : action.purchase_option == "on-demand" || action.strategy != "stopped"])
    error_message = "A spot purchase option does not combine with strategy \"stopped\": a one-time spot instance cannot be stopped (use \"warm\" or \"ephemeral\" with spot)."
  }

  validation {
    condition = alltrue([for action in values(var.actions) : try(
      action.interruptions_before_on_demand >= 0 && action.interruptions_before_on_demand <= 5 && floor(action.interruptions_before_on_demand) == action.interruptions_before_on_demand, false
    )])
    error_message = "An action's interruptions_before_on_demand must be a whole number from 0 to 5 (0: a build interrupted once runs again on on-demand)."
  }
}

variable "subnet_ids" {
  description = "Subnets (of one VPC) builders launch into; several subnets in different Availability Zones let a launch move on when one zone lacks capacity. Builders need a route to the SSM, S3 and CloudWatch Logs endpoints (NAT gateway or VPC endpoints); private subnets are recommended."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "At least one subnet is required."
  }

  validation {
    condition     = alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "subnet_ids must be subnet IDs (subnet-...)."
  }

  validation {
    condition     = length(distinct(var.subnet_ids)) == length(var.subnet_ids)
    error_message = "subnet_ids contains duplicates."
  }
}

variable "security_group_ids" {
  description = "Further security groups attached to every builder, besides the module's own (which has no ingress and the egress of builder_egress_cidr_blocks)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "security_group_ids must be security group IDs (sg-...)."
  }
}

variable "builder_egress_cidr_blocks" {
  description = "IPv4 CIDR blocks builders may reach on any protocol. The default allows builds to download dependencies; narrow it (e.g. to your VPC's CIDR with VPC endpoints) for isolated builds. Builders always need HTTPS to the SSM, S3 and CloudWatch Logs endpoints."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for cidr in var.builder_egress_cidr_blocks : can(cidrnetmask(cidr))])
    error_message = "builder_egress_cidr_blocks must be IPv4 CIDR blocks such as 10.0.0.0/16."
  }
}

variable "builder_metadata_hop_limit" {
  description = "IMDSv2 PUT response hop limit of builders (IMDSv2 is always required). 1 keeps the instance role's credentials out of containers running on the builder; set 2 only if a build's containers must call AWS with the instance role through IMDS."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2, 3], var.builder_metadata_hop_limit)
    error_message = "builder_metadata_hop_limit must be 1, 2 or 3."
  }
}

variable "default_build_timeout_minutes" {
  description = "Build timeout of an action that sets neither TimeoutMinutes nor timeout_minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.default_build_timeout_minutes >= 1 && var.default_build_timeout_minutes <= 1380 && floor(var.default_build_timeout_minutes) == var.default_build_timeout_minutes
    error_message = "default_build_timeout_minutes must be a whole number from 1 to 1380."
  }
}

variable "max_build_timeout_minutes" {
  description = "Longest build timeout a job may ask for. At most 1380 (23 hours): CodePipeline fails a custom action after 24 hours, and the instance launch, SSM registration and artifact transfer need the rest."
  type        = number
  default     = 480

  validation {
    condition     = var.max_build_timeout_minutes >= 1 && var.max_build_timeout_minutes <= 1380 && floor(var.max_build_timeout_minutes) == var.max_build_timeout_minutes
    error_message = "max_build_timeout_minutes must be a whole number from 1 to 1380 (a custom action times out after 24 hours)."
  }
}

variable "allowed_image_ids" {
  description = "AMI IDs jobs may launch (they must also pass allowed_image_owners). Empty: any AMI of an allowed owner. When set, the acquire function's IAM policy also allows only these images."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.allowed_image_ids : can(regex("^ami-[0-9a-f]{8,17}$", id))])
    error_message = "allowed_image_ids must be AMI IDs (ami-...)."
  }
}

variable "allowed_image_owners" {
  description = "Owners whose AMIs jobs may launch: \"amazon\", \"aws-marketplace\", \"self\" or 12-digit account IDs (an AMI shared from another account needs that account's ID)."
  type        = list(string)
  default     = ["amazon", "self"]

  validation {
    condition     = length(var.allowed_image_owners) > 0
    error_message = "allowed_image_owners must name at least one owner: every AMI is checked against it."
  }

  validation {
    condition     = alltrue([for owner in var.allowed_image_owners : contains(["amazon", "aws-marketplace", "self"], owner) || can(regex("^[0-9]{12}$", owner))])
    error_message = "allowed_image_owners must be \"amazon\", \"aws-marketplace\", \"self\" or 12-digit account IDs."
  }
}

variable "allowed_instance_types" {
  description = "Instance types jobs may launch, as shell-style patterns (e.g. \"m6i.*\", \"c7g.2xlarge\"). Keeps a typo or a pipeline edit from launching an expensive instance."
  type        = list(string)
  default = [
    "t3.*", "t3a.*", "t4g.*",
    "m5.*", "m6i.*", "m7i.*", "m6g.*", "m7g.*",
    "c5.*", "c6i.*", "c7i.*", "c6g.*", "c7g.*",
    "r5.*", "r6i.*",
  ]

  validation {
    condition     = length(var.allowed_instance_types) > 0
    error_message = "allowed_instance_types must allow at least one pattern."
  }

  validation {
    condition     = alltrue([for pattern in var.allowed_instance_types : can(regex("^[a-z0-9*?-]+\\.[a-z0-9*?-]+$", pattern))])
    error_message = "allowed_instance_types must be patterns like \"m6i.*\" or \"c7g.2xlarge\" (family.size, with * or ? wildcards)."
  }
}

variable "root_volume_size_gib" {
  description = "Root volume size (GiB, encrypted gp3) of an action that sets neither RootVolumeGiB nor root_volume_size_gib. Windows AMIs need at least 30; container builds need room for their images."
  type        = number
  default     = 50

  validation {
    condition     = var.root_volume_size_gib >= 8 && var.root_volume_size_gib <= 16384 && floor(var.root_volume_size_gib) == var.root_volume_size_gib
    error_message = "root_volume_size_gib must be a whole number from 8 to 16384."
  }
}

variable "artifact_bucket_arns" {
  description = "ARNs of the S3 buckets holding the pipelines' artifacts (the artifact stores). Builders may read and write objects in these buckets only."
  type        = list(string)

  validation {
    condition     = length(var.artifact_bucket_arns) > 0
    error_message = "At least one artifact bucket ARN is required: builders read the input artifact from it."
  }

  validation {
    condition     = alltrue([for arn in var.artifact_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", arn))])
    error_message = "artifact_bucket_arns must be bucket ARNs such as arn:aws:s3:::my-artifacts (no object path)."
  }
}

variable "artifact_kms_key_arns" {
  description = "ARNs of the KMS keys encrypting the artifacts (the artifact stores' encryption keys). Builders may Decrypt and GenerateDataKey with these keys only. Key ARNs, not alias ARNs: IAM does not resolve aliases."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.artifact_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", arn))])
    error_message = "artifact_kms_key_arns must be KMS key ARNs (arn:aws:kms:<region>:<account>:key/<id>), not aliases."
  }
}

variable "builder_iam_policy_arns" {
  description = "IAM policy ARNs attached to the builder role for what builds do beyond artifacts, e.g. pushing to ECR."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.builder_iam_policy_arns : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", arn))])
    error_message = "builder_iam_policy_arns must be IAM policy ARNs."
  }
}

variable "ssm_registration_timeout_minutes" {
  description = "How long a new builder may take to come Online in Systems Manager before the job fails (and the instance is terminated). Windows first boot takes several minutes."
  type        = number
  default     = 15

  validation {
    condition     = var.ssm_registration_timeout_minutes >= 1 && var.ssm_registration_timeout_minutes <= 60 && floor(var.ssm_registration_timeout_minutes) == var.ssm_registration_timeout_minutes
    error_message = "ssm_registration_timeout_minutes must be a whole number from 1 to 60."
  }
}

variable "job_sweep_schedule_expression" {
  description = "EventBridge schedule of the sweep: it picks up continuation jobs (no event announces them), jobs whose STARTED event was lost and build results whose SSM event was lost. A slower schedule delays those cases by as much."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours)\\)|cron\\(.+\\))$", var.job_sweep_schedule_expression))
    error_message = "job_sweep_schedule_expression must be rate(N minute(s)|hour(s)) or cron(...)."
  }
}

variable "reaper_schedule_expression" {
  description = "EventBridge schedule of the reaper, as rate(1 minute|hour) or rate(N minutes|hours), at most a day. Each run marks builder instances no live job owns and terminates those marked at least one run earlier (the two runs let a transient misreading correct itself), and fails acknowledged jobs whose execution ended without reporting. Also the period of the reaped-instances alarm."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^rate\\((1 (minute|hour)|([2-9]|[1-9][0-9]+) (minutes|hours))\\)$", var.reaper_schedule_expression))
    error_message = "reaper_schedule_expression must be rate(1 minute), rate(N minutes), rate(1 hour) or rate(N hours) (no cron: the reaper and its alarm need a fixed interval)."
  }

  validation {
    condition = try(
      tonumber(regex("[0-9]+", var.reaper_schedule_expression)) * (strcontains(var.reaper_schedule_expression, "hour") ? 60 : 1) <= 1440,
      false
    )
    error_message = "reaper_schedule_expression must be at most a day (rate(1440 minutes) or rate(24 hours))."
  }
}

variable "pool_keeper_schedule_expression" {
  description = "EventBridge schedule of the pool keeper: it keeps each pool's minimum ready, retires unhealthy, rotated, recycled and idle instances, serves the capacity queue and fails jobs that waited past their timeout. A release nudges it at once when a pool falls below its minimum; a slower schedule delays the rest (and the queue's visibility metrics) by as much."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours)\\)|cron\\(.+\\))$", var.pool_keeper_schedule_expression))
    error_message = "pool_keeper_schedule_expression must be rate(N minute(s)|hour(s)) or cron(...)."
  }
}

variable "orphan_grace_minutes" {
  description = "Minutes past a builder's ec2-action:deadline tag (its build timeout, SSM registration window and 30 minutes) after which the reaper treats it as overdue and terminates it, even if its execution still runs."
  type        = number
  default     = 30

  validation {
    condition     = var.orphan_grace_minutes >= 0 && var.orphan_grace_minutes <= 1440 && floor(var.orphan_grace_minutes) == var.orphan_grace_minutes
    error_message = "orphan_grace_minutes must be a whole number from 0 to 1440."
  }
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when one of the module's CloudWatch alarms fires: instances reaped, a job waiting in a capacity queue too long, a pool below its minimum, capacity errors sustained, a function failing, an execution timed out or aborted. Empty: the alarms only change state."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.alarm_actions) <= 5 && alltrue([for arn in var.alarm_actions : can(regex("^arn:aws[a-z-]*:[a-z0-9-]+:", arn))])
    error_message = "alarm_actions must be at most 5 ARNs (CloudWatch's limit per alarm)."
  }
}

variable "dashboard_enabled" {
  description = "Create the CloudWatch dashboard (`dashboard_url`): jobs and results, the time from STARTED to command start split into queue wait, acquisition, boot and overhead (p50, p90), build duration, queues, pools, capacity errors, spot restarts, instance-seconds, reaped instances, function and execution errors, links to the build log group and the state machine. The alarms do not depend on it."
  type        = bool
  default     = true

  validation {
    condition     = var.dashboard_enabled != null
    error_message = "dashboard_enabled must be true or false."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the module's metrics, which the functions write as embedded metric format log lines (no PutMetricData). Dimensions: Stack (name_prefix) and Action (the key in `actions`); README, \"Observability: metrics, a dashboard, alarms\"."
  type        = string
  default     = "CodePipelineEc2Action"

  validation {
    condition     = can(regex("^[0-9A-Za-z._/#-][0-9A-Za-z._/#:-]{0,254}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 letters, digits and . _ / # : - (not first a colon), and must not start with AWS/ (CloudWatch reserves it)."
  }
}

variable "queue_wait_alarm_minutes" {
  description = "Minutes a job may wait in an action's capacity queue (max_concurrent_builds reached, or no capacity) before that action's queue-wait alarm fires."
  type        = number
  default     = 15

  validation {
    condition     = try(var.queue_wait_alarm_minutes >= 1 && var.queue_wait_alarm_minutes <= 1380 && floor(var.queue_wait_alarm_minutes) == var.queue_wait_alarm_minutes, false)
    error_message = "queue_wait_alarm_minutes must be a whole number from 1 to 1380 (a job times out after at most 23 hours)."
  }
}

variable "pool_shortfall_alarm_minutes" {
  description = "Minutes a pool may stay below its minimum of ready instances (min_ready or its schedule's) before that action's pool-shortfall alarm fires: a multiple of 5 (the alarm looks at 5-minute periods)."
  type        = number
  default     = 30

  validation {
    condition     = try(var.pool_shortfall_alarm_minutes >= 5 && var.pool_shortfall_alarm_minutes <= 1440 && var.pool_shortfall_alarm_minutes % 5 == 0, false)
    error_message = "pool_shortfall_alarm_minutes must be a multiple of 5 from 5 to 1440."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps build output and the functions' and state machine's logs (one of CloudWatch's allowed values)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "tracing_enabled" {
  description = "Trace jobs with AWS X-Ray: the state machine and every function (Active tracing, with each AWS call as a subsegment). Off by default: the X-Ray SDK adds about a quarter of a second to every cold start of a function, on the path from the STARTED event to the launch."
  type        = bool
  default     = false

  validation {
    condition     = var.tracing_enabled != null
    error_message = "tracing_enabled must be true or false."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN encrypting every log group the module creates, or null. Its key policy must allow the CloudWatch Logs service principal of this Region."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "lambda_runtime" {
  description = "Python runtime of the Lambda functions."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.12 or python3.13."
  }
}

variable "iam_role_permissions_boundary_arn" {
  description = "Permissions boundary attached to every IAM role the module creates, or null."
  type        = string
  default     = null

  validation {
    condition     = var.iam_role_permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.iam_role_permissions_boundary_arn))
    error_message = "iam_role_permissions_boundary_arn must be an IAM policy ARN or null."
  }
}

variable "tags" {
  description = "Tags applied to every resource the module creates and to builder instances, volumes and network interfaces. Builders read their tags from the instance metadata, so keys hold only letters, digits and + - = . , _ : @ (EC2 refuses others at launch)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.tags) : !startswith(lower(key), "aws:") && !startswith(key, "ec2-action:")])
    error_message = "Tag keys starting with aws: are reserved by AWS, and ec2-action: by this module."
  }

  # Builders read their tags from the instance metadata (their self-shutdown deadline), and EC2 then refuses to launch
  # an instance with a tag key it cannot show there.
  validation {
    condition     = alltrue([for key in keys(var.tags) : can(regex("^[A-Za-z0-9+=.,_:@-]+$", key)) && !contains([".", "..", "_index"], key)])
    error_message = "Tag keys may hold only letters, digits and + - = . , _ : @ (no spaces, no /), and may not be \".\", \"..\" or \"_index\": builders carry these tags and read them from their instance metadata, where EC2 refuses other keys at launch."
  }
}
