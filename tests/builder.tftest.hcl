# The builder module on its own: what keeps a builder instance locked down lives in its launch template, security
# group and role.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_subnet" {
    defaults = { vpc_id = "vpc-0123456789abcdef0" }
  }
}

variables {
  name_prefix              = "ci-build"
  subnet_ids               = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  egress_cidr_blocks       = ["0.0.0.0/0"]
  metadata_hop_limit       = 1
  artifact_bucket_arns     = ["arn:aws:s3:::my-artifacts"]
  artifact_kms_key_arns    = ["arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
  build_log_group_arn      = "arn:aws:logs:eu-west-1:123456789012:log-group:/ci-build/builds"
  extra_policy_arns        = ["arn:aws:iam::123456789012:policy/ecr-push"]
  permissions_boundary_arn = null
  tags                     = { Team = "platform" }
}

override_resource {
  target          = aws_security_group.builder
  override_during = plan
  values          = { id = "sg-0123456789abcdef0" }
}

# Both platforms' templates lock the instance down alike; only their user data (the self-shutdown script) differs.
run "launch_templates_lock_the_instance_down" {
  command = plan

  module {
    source = "./modules/builder"
  }

  variables {
    security_group_ids = ["sg-0fedcba9876543210"]
  }

  assert {
    condition = alltrue([
      for template in [aws_launch_template.builder, aws_launch_template.builder_windows] :
      template.metadata_options[0].http_tokens == "required" &&
      template.metadata_options[0].http_endpoint == "enabled" &&
      template.metadata_options[0].http_put_response_hop_limit == 1 &&
      template.metadata_options[0].instance_metadata_tags == "enabled"
    ])
    error_message = "Builders must require IMDSv2 with a hop limit of 1 by default, and read their tags (the deadline) there."
  }
  assert {
    condition     = aws_launch_template.builder.instance_initiated_shutdown_behavior == "terminate" && aws_launch_template.builder_windows.instance_initiated_shutdown_behavior == "terminate"
    error_message = "A builder that shuts itself down (the user-data deadline) must be terminated, not left stopped."
  }
  assert {
    condition     = aws_launch_template.builder.monitoring[0].enabled && aws_launch_template.builder_windows.monitoring[0].enabled
    error_message = "Detailed monitoring should be on."
  }
  assert {
    condition = alltrue([
      for template in [aws_launch_template.builder, aws_launch_template.builder_windows] :
      template.key_name == null && template.image_id == null && template.instance_type == null &&
      template.vpc_security_group_ids == null && length(template.block_device_mappings) == 0
    ])
    error_message = "The launch templates must carry no key pair, image, type or volumes: they come per launch."
  }
  # One network interface: the module's security group and the further ones, no public IP, no subnet (the fleet's
  # overrides give it).
  assert {
    condition = alltrue([
      for template in [aws_launch_template.builder, aws_launch_template.builder_windows] :
      length(template.network_interfaces) == 1 &&
      template.network_interfaces[0].device_index == 0 &&
      template.network_interfaces[0].security_groups == toset(["sg-0123456789abcdef0", "sg-0fedcba9876543210"]) &&
      template.network_interfaces[0].associate_public_ip_address == "false" &&
      template.network_interfaces[0].delete_on_termination == "true" &&
      template.network_interfaces[0].subnet_id == null
    ])
    error_message = "Each template's network interface must carry the builders' security groups, no public IP and no subnet."
  }
  assert {
    condition = (
      base64decode(aws_launch_template.builder.user_data) == file("modules/builder/user_data/linux.sh") &&
      base64decode(aws_launch_template.builder_windows.user_data) == "<powershell>\n${file("modules/builder/user_data/windows.ps1")}</powershell>\n"
    )
    error_message = "Each template's user data must be its platform's self-shutdown script (PowerShell wrapped for EC2Launch)."
  }
  assert {
    condition = alltrue(flatten([
      for template in [aws_launch_template.builder, aws_launch_template.builder_windows] : [
        for spec in template.tag_specifications :
        spec.tags["ec2-action:stack"] == "ci-build" && spec.tags["Team"] == "platform"
      ]
    ])) && length(aws_launch_template.builder.tag_specifications) == 3 && length(aws_launch_template.builder_windows.tag_specifications) == 3
    error_message = "Instances, volumes and network interfaces must be tagged with the stack and the user's tags."
  }
  assert {
    condition = (
      aws_launch_template.builder.name == "ci-build-builder" && aws_launch_template.builder_windows.name == "ci-build-builder-windows" &&
      keys(output.launch_templates) == ["Linux", "Windows"] &&
      output.security_group_ids == ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]
    )
    error_message = "The templates must be named after the prefix and output by platform, with every security group."
  }
}

run "security_group_has_no_ingress" {
  command = plan

  module {
    source = "./modules/builder"
  }

  assert {
    condition     = length(aws_security_group.builder.ingress) == 0 && aws_security_group.builder.vpc_id == "vpc-0123456789abcdef0"
    error_message = "The builder security group must have no ingress and live in the subnets' VPC."
  }
  assert {
    condition     = length(aws_vpc_security_group_egress_rule.builder) == 1 && aws_vpc_security_group_egress_rule.builder[0].cidr_ipv4 == "0.0.0.0/0"
    error_message = "Egress must follow egress_cidr_blocks."
  }
}

run "role_reaches_only_configured_artifacts" {
  command = plan

  module {
    source = "./modules/builder"
  }

  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.builder.policy).Statement :
      alltrue([for resource in statement.Resource : startswith(resource, "arn:aws:s3:::my-artifacts")])
      if anytrue([for action in statement.Action : startswith(action, "s3:")])
    ])
    error_message = "The builder may reach S3 buckets other than the artifact buckets."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.builder.policy).Statement :
      statement.Resource == ["arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"]
      if anytrue([for action in statement.Action : startswith(action, "kms:")])
    ])
    error_message = "The builder may use KMS keys other than the artifact keys."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(aws_iam_role_policy.builder.policy).Statement :
      alltrue([for resource in statement.Resource : startswith(resource, "arn:aws:logs:eu-west-1:123456789012:log-group:")])
      if anytrue([for action in statement.Action : startswith(action, "logs:")])
    ])
    error_message = "The builder may write logs outside this account and Region's log groups."
  }
  assert {
    condition     = aws_iam_role_policy_attachment.extra[*].policy_arn == ["arn:aws:iam::123456789012:policy/ecr-push"]
    error_message = "The builder needs the extra policies."
  }
  assert {
    condition = contains(
      flatten([for statement in jsondecode(aws_iam_role_policy.ssm_agent.policy).Statement : statement.Action]),
      "ssm:UpdateInstanceInformation"
    )
    error_message = "The SSM Agent cannot register without ssm:UpdateInstanceInformation."
  }
  assert {
    condition = !anytrue([
      for action in flatten([for statement in jsondecode(aws_iam_role_policy.ssm_agent.policy).Statement : statement.Action]) :
      startswith(action, "ssm:GetParameter")
    ])
    error_message = "Builds must not read every SSM parameter in the Region."
  }
}

run "no_key_statement_without_keys" {
  command = plan

  module {
    source = "./modules/builder"
  }

  variables {
    artifact_kms_key_arns = []
    egress_cidr_blocks    = []
    metadata_hop_limit    = 2
  }

  assert {
    condition     = !strcontains(aws_iam_role_policy.builder.policy, "kms:")
    error_message = "Without artifact keys the builder gets no KMS permission."
  }
  assert {
    condition     = length(aws_vpc_security_group_egress_rule.builder) == 0
    error_message = "No egress CIDR blocks means no egress rule."
  }
  assert {
    condition     = aws_launch_template.builder.metadata_options[0].http_put_response_hop_limit == 2 && aws_launch_template.builder_windows.metadata_options[0].http_put_response_hop_limit == 2
    error_message = "The hop limit must follow metadata_hop_limit."
  }
}

run "subnets_of_two_vpcs_are_refused" {
  command = plan

  module {
    source = "./modules/builder"
  }

  override_data {
    target = data.aws_subnet.selected[1]
    values = { vpc_id = "vpc-0fedcba9876543210" }
  }

  expect_failures = [aws_security_group.builder]
}
