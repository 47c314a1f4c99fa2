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
