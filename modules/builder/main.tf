# count, not for_each: subnet IDs and policy ARNs are often created in the same apply (unknown at plan time).
data "aws_subnet" "selected" {
  count = length(var.subnet_ids)

  id = var.subnet_ids[count.index]
}

locals {
  vpc_ids = distinct([for subnet in data.aws_subnet.selected : subnet.vpc_id])
  # Launch-template tags mark even a builder launched by hand as belonging to this stack (the key is tags.STACK in
  # lambda_src/ec2_action/tags.py, kept equal by tests/test_shared_constants.py).
  instance_tags = merge(var.tags, { "ec2-action:stack" = var.name_prefix })
}

resource "aws_iam_role" "builder" {
  name                 = "${var.name_prefix}-builder"
  description          = "Builder instances of the ${var.name_prefix} CodePipeline EC2 action."
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

# What the SSM Agent needs to register and run commands: AmazonSSMManagedInstanceCore without its
# ssm:GetParameter(s) on "*", which would let any build read every parameter (SecureStrings included) in the Region.
# Builds that need parameters get them through builder_iam_policy_arns, scoped to what they read.
resource "aws_iam_role_policy" "ssm_agent" {
  #checkov:skip=CKV_AWS_290:The SSM Agent's own calls (AmazonSSMManagedInstanceCore's grants, minus GetParameter*), which AWS defines only on "*".
  #checkov:skip=CKV_AWS_355:The same: ssm, ssmmessages and ec2messages agent calls have no narrower resource.
  name = "ssm-agent"
  role = aws_iam_role.builder.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The agent's own API calls; AWS defines none of them on a narrower resource than "*".
        Sid    = "SsmAgentCore"
        Effect = "Allow"
        Action = [
          "ssm:DescribeAssociation",
          "ssm:DescribeDocument",
          "ssm:GetDeployablePatchSnapshotForInstance",
          "ssm:GetDocument",
          "ssm:GetManifest",
          "ssm:ListAssociations",
          "ssm:ListInstanceAssociations",
          "ssm:PutComplianceItems",
          "ssm:PutConfigurePackageResult",
          "ssm:PutInventory",
          "ssm:UpdateAssociationStatus",
          "ssm:UpdateInstanceAssociationStatus",
          "ssm:UpdateInstanceInformation",
        ]
        Resource = "*"
      },
      {
        Sid      = "SsmAgentMessages"
        Effect   = "Allow"
        Action   = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"]
        Resource = "*"
      },
      {
        Sid      = "SsmAgentRunCommand"
        Effect   = "Allow"
        Action   = ["ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply"]
        Resource = "*"
      },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "extra" {
  count = length(var.extra_policy_arns)

  role       = aws_iam_role.builder.name
  policy_arn = var.extra_policy_arns[count.index]
}

resource "aws_iam_role_policy" "builder" {
  name = "artifacts-and-build-logs"
  role = aws_iam_role.builder.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "ReadWriteArtifactObjects"
          Effect   = "Allow"
          Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
          Resource = [for arn in var.artifact_bucket_arns : "${arn}/*"]
        },
        {
          # AWS Tools for PowerShell (Read-S3Object) looks up the bucket's Region first.
          Sid      = "LocateArtifactBuckets"
          Effect   = "Allow"
          Action   = ["s3:GetBucketLocation"]
          Resource = var.artifact_bucket_arns
        },
        {
          Sid      = "WriteBuildOutput"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
          Resource = ["${var.build_log_group_arn}:*"]
        },
        {
          # The SSM Agent checks that the output log group exists before writing to it (a list call: it cannot
          # be scoped to one group, only to this account and Region).
          Sid      = "FindBuildLogGroup"
          Effect   = "Allow"
          Action   = ["logs:DescribeLogGroups"]
          Resource = [replace(var.build_log_group_arn, "/:log-group:.*$/", ":log-group:*")]
        },
      ],
      length(var.artifact_kms_key_arns) == 0 ? [] : [{
        Sid      = "UseArtifactKeys"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.artifact_kms_key_arns
      }],
    )
  })
}

resource "aws_iam_instance_profile" "builder" {
  name = "${var.name_prefix}-builder"
  role = aws_iam_role.builder.name
  tags = var.tags
}

resource "aws_security_group" "builder" {
  #checkov:skip=CKV2_AWS_5:Attached through the launch templates' network interface to every builder.
  name        = "${var.name_prefix}-builder"
  description = "Builder instances of ${var.name_prefix}: no ingress (reached through SSM only)."
  vpc_id      = local.vpc_ids[0]
  # Managed exclusively here: an ingress rule added by hand is removed at the next apply.
  ingress = []
  tags    = merge(var.tags, { Name = "${var.name_prefix}-builder" })

  lifecycle {
    precondition {
      condition     = length(local.vpc_ids) == 1
      error_message = "All subnet_ids must belong to the same VPC; they span ${join(", ", local.vpc_ids)}."
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "builder" {
  count = length(var.egress_cidr_blocks)

  security_group_id = aws_security_group.builder.id
  description       = "Builds download dependencies and reach the SSM, S3 and CloudWatch Logs endpoints."
  cidr_ipv4         = var.egress_cidr_blocks[count.index]
  ip_protocol       = "-1"
  tags              = var.tags
}

# One launch template per platform: what every builder gets whatever its job. EC2 Fleet launches every builder
# (CreateFleet, type instant) with the platform's template, overriding the image, instance type, subnet and root
# volume per launch; the network interface (the builders' security groups, no public IP) and the self-shutdown (user
# data reading the ec2-action:deadline tag from the instance metadata, which CreateFleet cannot pass per launch) come
# from here. Instance tags are readable from the instance metadata for that: EC2 then refuses tag keys with spaces or
# "/" on the instance (the root module's tags validation says so).
locals {
  security_group_ids = concat([aws_security_group.builder.id], var.security_group_ids)
  user_data = {
    Linux   = file("${path.module}/user_data/linux.sh")
    Windows = "<powershell>\n${file("${path.module}/user_data/windows.ps1")}</powershell>\n"
  }
}

resource "aws_launch_template" "builder" {
  name                                 = "${var.name_prefix}-builder"
  description                          = "Linux builder instances of the ${var.name_prefix} CodePipeline EC2 action."
  update_default_version               = true
  instance_initiated_shutdown_behavior = "terminate"
  user_data                            = base64encode(local.user_data.Linux)

  iam_instance_profile {
    arn = aws_iam_instance_profile.builder.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.metadata_hop_limit
    instance_metadata_tags      = "enabled"
  }

  # The subnet comes with each launch (the fleet's overrides).
  network_interfaces {
    device_index                = 0
    security_groups             = local.security_group_ids
    associate_public_ip_address = false
    delete_on_termination       = true
  }

  monitoring {
    enabled = true
  }

  dynamic "tag_specifications" {
    for_each = ["instance", "volume", "network-interface"]

    content {
      resource_type = tag_specifications.value
      tags          = local.instance_tags
    }
  }

  tags = var.tags
}

# The Windows builders' template: the Linux one's settings, with the PowerShell self-shutdown.
resource "aws_launch_template" "builder_windows" {
  name                                 = "${var.name_prefix}-builder-windows"
  description                          = "Windows builder instances of the ${var.name_prefix} CodePipeline EC2 action."
  update_default_version               = true
  instance_initiated_shutdown_behavior = "terminate"
  user_data                            = base64encode(local.user_data.Windows)

  iam_instance_profile {
    arn = aws_iam_instance_profile.builder.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.metadata_hop_limit
    instance_metadata_tags      = "enabled"
  }

  network_interfaces {
    device_index                = 0
    security_groups             = local.security_group_ids
    associate_public_ip_address = false
    delete_on_termination       = true
  }

  monitoring {
    enabled = true
  }

  dynamic "tag_specifications" {
    for_each = ["instance", "volume", "network-interface"]

    content {
      resource_type = tag_specifications.value
      tags          = local.instance_tags
    }
  }

  tags = var.tags
}
