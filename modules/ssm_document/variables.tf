variable "name_prefix" {
  description = "Prefix of the document and log group names."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps build output."
  type        = number
}

variable "log_kms_key_arn" {
  description = "KMS key encrypting the build log group, or null for CloudWatch Logs' default encryption."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
}
