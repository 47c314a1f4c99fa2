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
