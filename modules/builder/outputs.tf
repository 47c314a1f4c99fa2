output "role_arn" {
  description = "ARN of the builder instances' IAM role."
  value       = aws_iam_role.builder.arn
}

output "role_name" {
  description = "Name of the builder instances' IAM role."
  value       = aws_iam_role.builder.name
}

output "instance_profile_arn" {
  description = "ARN of the builder instance profile."
  value       = aws_iam_instance_profile.builder.arn
}

output "instance_profile_name" {
  description = "Name of the builder instance profile."
  value       = aws_iam_instance_profile.builder.name
}

output "security_group_id" {
  description = "ID of the builders' security group (no ingress)."
  value       = aws_security_group.builder.id
}

output "launch_template_id" {
  description = "ID of the Linux builders' launch template."
  value       = aws_launch_template.builder.id
}

output "launch_template_arn" {
  description = "ARN of the Linux builders' launch template."
  value       = aws_launch_template.builder.arn
}

output "launch_template_latest_version" {
  description = "Latest version of the Linux builders' launch template (the default one): instances launch with it, and pools rotate when it changes."
  value       = aws_launch_template.builder.latest_version
}

output "security_group_ids" {
  description = "Every security group of the builders: the module's own, then the further ones (security_group_ids)."
  value       = local.security_group_ids
}

output "launch_templates" {
  description = "The builders' launch templates by platform (Linux, Windows): `{id, arn, version}`, version being the latest (the default one), which instances launch with; a new version rotates the platform's pools."
  value = {
    for platform, template in { Linux = aws_launch_template.builder, Windows = aws_launch_template.builder_windows } :
    platform => { id = template.id, arn = template.arn, version = tostring(template.latest_version) }
  }
}

output "subnet_zones" {
  description = "The Availability Zone of each builder subnet (subnet id -> zone name), read with the subnets' VPC: the functions name the zone in the CapacityErrors metric."
  value       = { for subnet in data.aws_subnet.selected : subnet.id => subnet.availability_zone }
}
