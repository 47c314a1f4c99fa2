variable "actions" {
  description = "Custom actions to register, keyed by a short name: category, provider, the current version and the previous versions still served, and the defaults that make ImageId and InstanceType optional. Each version is its own action type; the root module validates them (valid, distinct)."
  type = map(object({
    category          = string
    provider          = string
    version           = string
    previous_versions = list(string)
    image_id          = string
    instance_type     = string
    timeout_minutes   = number
  }))
}

variable "max_build_timeout_minutes" {
  description = "Longest build timeout a job may ask for; an action's default must not exceed it."
  type        = number
}

variable "allowed_image_ids" {
  description = "AMI IDs jobs may launch (empty: any); an action's default image must be one of them."
  type        = list(string)
}

variable "allowed_instance_types" {
  description = "Instance type patterns jobs may launch; an action's default instance type must match one."
  type        = list(string)
}

variable "document_name" {
  description = "Name of the SSM document; the action's entity link opens its console page."
  type        = string
}

variable "tags" {
  description = "Tags applied to every action type."
  type        = map(string)
}
