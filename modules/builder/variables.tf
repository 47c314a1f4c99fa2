variable "name_prefix" {
  description = "Prefix of every resource name; also the value of the `ec2-action:stack` tag on builder instances."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the builders launch into; the security group is created in their VPC (they must share one)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "At least one subnet is required."
  }
}

variable "security_group_ids" {
  description = "Further security groups of every builder, besides the module's own (the launch templates' network interface carries both)."
  type        = list(string)
  default     = []
}

variable "egress_cidr_blocks" {
  description = "IPv4 CIDR blocks the builders may reach (all protocols). Empty: no egress rule at all."
  type        = list(string)
}

variable "metadata_hop_limit" {
  description = "IMDSv2 PUT response hop limit: 1 keeps instance credentials away from containers, 2 lets containers on the builder use IMDS."
  type        = number

  validation {
    condition     = var.metadata_hop_limit >= 1 && var.metadata_hop_limit <= 3 && floor(var.metadata_hop_limit) == var.metadata_hop_limit
    error_message = "metadata_hop_limit must be 1, 2 or 3."
  }
}

variable "artifact_bucket_arns" {
  description = "ARNs of the S3 buckets holding pipeline artifacts; the builder may read and write objects in them only."
  type        = list(string)
}

variable "artifact_kms_key_arns" {
  description = "ARNs of the KMS keys encrypting the artifacts; the builder may Decrypt and GenerateDataKey with them only."
  type        = list(string)
}

variable "build_log_group_arn" {
  description = "ARN of the log group the SSM Agent writes build output to."
  type        = string
}

variable "extra_policy_arns" {
  description = "Further IAM policy ARNs attached to the builder role (e.g. ECR push)."
  type        = list(string)
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of the builder role, or null."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource and, through the launch template, to builder instances, volumes and network interfaces."
  type        = map(string)
}
