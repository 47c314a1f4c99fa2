# An EC2 Image Builder pipeline that bakes a Windows Server 2022 builder AMI for the EC2-Windows action: the Containers
# feature, Docker, the base images pre-pulled (a build starts with them cached), an SSM Agent the module can drive;
# distributed with EC2 Fast Launch on, rebuilt on a schedule so that the cached images follow Microsoft's updates.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  tags = {
    Example = "windows-builder-image"
    Stack   = var.name_prefix
  }
  region       = data.aws_region.current.id
  account_id   = data.aws_caller_identity.current.account_id
  parent_image = coalesce(var.parent_image, "arn:${data.aws_partition.current.partition}:imagebuilder:${local.region}:aws:image/windows-server-2022-english-full-base-x86/x.x.x")
  registry     = "${local.account_id}.dkr.ecr.${local.region}.${data.aws_partition.current.dns_suffix}"
  # mcr.microsoft.com/windows/servercore:ltsc2022 -> windows/servercore (the repository path) and ltsc2022 (the tag).
  mirrors = var.mirror_to_ecr ? {
    for image in var.base_images : join("/", slice(split("/", split(":", image)[0]), 1, length(split("/", split(":", image)[0])))) => image
  } : {}
  image_id_parameter = "/${var.name_prefix}/image-id"

  # Each component's PowerShell lives in components/*.ps1 (checked by the PowerShell syntax check); the documents
  # only sequence it. {{ Name }} in a script is the component parameter of that name.
  component_documents = {
    containers = {
      description = "Enables the Windows Containers feature and reboots."
      steps = [
        { name = "EnableContainers", action = "ExecutePowerShell", inputs = { commands = [file("${path.module}/components/enable-containers.ps1")] } },
        { name = "Reboot", action = "Reboot", inputs = { delaySeconds = 60 } },
      ]
      parameters = []
    }
    docker = {
      description = "Installs Docker Engine (static binaries) as a service."
      steps       = [{ name = "InstallDocker", action = "ExecutePowerShell", inputs = { commands = [file("${path.module}/components/install-docker.ps1")] } }]
      parameters  = [{ DockerVersion = { type = "string", description = "Docker Engine version." } }]
    }
    base-images = {
      description = "Pulls the base images into the image, checking their OS build against the host's."
      steps       = [{ name = "PullBaseImages", action = "ExecutePowerShell", inputs = { commands = [file("${path.module}/components/pull-base-images.ps1")] } }]
      parameters  = [{ BaseImages = { type = "string", description = "Images to pull, comma-separated." } }]
    }
    ssm-agent = {
      description = "Fails the image if its SSM Agent is older than the EC2 action needs."
      steps       = [{ name = "CheckSsmAgent", action = "ExecutePowerShell", inputs = { commands = [file("${path.module}/components/check-ssm-agent.ps1")] } }]
      parameters  = []
    }
    mirror = {
      description = "Pushes the base images to this account's ECR."
      steps       = [{ name = "MirrorBaseImages", action = "ExecutePowerShell", inputs = { commands = [file("${path.module}/components/mirror-base-images.ps1")] } }]
      parameters = [
        { Registry = { type = "string", description = "ECR registry to log in to." } },
        { Region = { type = "string", description = "Region of the registry." } },
        { Mirrors = { type = "string", description = "source=target pairs, comma-separated." } },
      ]
    }
  }
  # The recipe's components in order, with their parameters; the mirror only when asked for.
  recipe_components = concat(
    [
      { key = "containers", parameters = {} },
      { key = "docker", parameters = { DockerVersion = var.docker_version } },
      { key = "base-images", parameters = { BaseImages = join(",", var.base_images) } },
      { key = "ssm-agent", parameters = {} },
    ],
    var.mirror_to_ecr ? [{
      key = "mirror"
      parameters = {
        Registry = local.registry
        Region   = local.region
        Mirrors  = join(",", [for path, image in local.mirrors : "${image}=${aws_ecr_repository.mirror[path].repository_url}:${split(":", image)[1]}"])
      }
    }] : [],
  )
}

resource "aws_imagebuilder_component" "this" {
  #checkov:skip=CKV_AWS_180:The documents hold public scripts and image names, no secret: Image Builder's own key suffices.
  for_each = { for key, document in local.component_documents : key => document if key != "mirror" || var.mirror_to_ecr }

  name        = "${var.name_prefix}-${each.key}"
  description = each.value.description
  platform    = "Windows"
  # Image Builder versions are immutable: a change of the document is a new version (a replacement).
  version = "1.0.${parseint(substr(sha256(jsonencode(each.value)), 0, 6), 16)}"
  data = yamlencode(merge(
    {
      name          = "${var.name_prefix}-${each.key}"
      description   = each.value.description
      schemaVersion = 1.0
      phases        = [{ name = each.key == "ssm-agent" ? "validate" : "build", steps = each.value.steps }]
    },
    length(each.value.parameters) > 0 ? { parameters = each.value.parameters } : {},
  ))
  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_imagebuilder_image_recipe" "this" {
  #checkov:skip=CKV_AWS_200:Encrypted with the account's EBS key: a customer managed key would need grants for the action's acquire role and for Fast Launch's service-linked role to launch from the AMI.
  name         = var.name_prefix
  parent_image = local.parent_image
  version      = "1.0.${parseint(substr(sha256(jsonencode([local.parent_image, var.root_volume_size_gib, local.recipe_components, [for c in aws_imagebuilder_component.this : c.arn]])), 0, 6), 16)}"
  description  = "Windows Server 2022 with Containers, Docker ${var.docker_version} and ${join(", ", var.base_images)} cached."

  block_device_mapping {
    device_name = "/dev/sda1"
    ebs {
      volume_size           = var.root_volume_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  dynamic "component" {
    for_each = local.recipe_components
    content {
      component_arn = aws_imagebuilder_component.this[component.value.key].arn
      dynamic "parameter" {
        for_each = component.value.parameters
        content {
          name  = parameter.key
          value = parameter.value
        }
      }
    }
  }

  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

# --- The build instance's role --------------------------------------------------------------------------------------

resource "aws_iam_role" "build" {
  name = "${var.name_prefix}-image-build"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.${data.aws_partition.current.dns_suffix}" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "build" {
  for_each = toset(["EC2InstanceProfileForImageBuilder", "AmazonSSMManagedInstanceCore"])

  role       = aws_iam_role.build.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

resource "aws_iam_role_policy" "mirror" {
  count = var.mirror_to_ecr ? 1 : 0

  name = "push-base-image-mirrors"
  role = aws_iam_role.build.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Registry login: GetAuthorizationToken supports no resource-level permissions.
        Sid      = "LogIn"
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken"]
        Resource = ["*"]
      },
      {
        Sid    = "PushTheMirrors"
        Effect = "Allow"
        Action = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:InitiateLayerUpload",
          "ecr:UploadLayerPart",
          "ecr:CompleteLayerUpload",
          "ecr:PutImage",
        ]
        Resource = [for repository in aws_ecr_repository.mirror : repository.arn]
      },
    ]
  })
}

resource "aws_iam_instance_profile" "build" {
  name = "${var.name_prefix}-image-build"
  role = aws_iam_role.build.name
  tags = local.tags
}

resource "aws_security_group" "build" {
  count = var.subnet_id == null ? 0 : 1

  name        = "${var.name_prefix}-image-build"
  description = "Image Builder and Fast Launch instances of ${var.name_prefix}: no ingress, HTTPS and HTTP out (MCR, Docker downloads, AWS endpoints)."
  vpc_id      = data.aws_subnet.build[0].vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "build" {
  for_each = var.subnet_id == null ? {} : { https = 443, http = 80 }

  security_group_id = aws_security_group.build[0].id
  description       = "${upper(each.key)} out: base images, Docker, Windows Update and AWS endpoints."
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}

data "aws_subnet" "build" {
  count = var.subnet_id == null ? 0 : 1
  id    = var.subnet_id
}

resource "aws_imagebuilder_infrastructure_configuration" "this" {
  name                          = var.name_prefix
  description                   = "Builds ${var.name_prefix} on ${join(" or ", var.build_instance_types)}."
  instance_profile_name         = aws_iam_instance_profile.build.name
  instance_types                = var.build_instance_types
  subnet_id                     = var.subnet_id
  security_group_ids            = var.subnet_id == null ? null : [aws_security_group.build[0].id]
  terminate_instance_on_failure = true

  instance_metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2 # Docker's containers reach IMDS through one more hop during the build
  }

  resource_tags = local.tags
  tags          = local.tags
}

# --- Distribution: the AMI, its ID in SSM Parameter Store, Fast Launch ---------------------------------------------

# Fast Launch pre-provisions from this template: the subnet (an account without a default VPC needs one) and IMDSv2.
resource "aws_launch_template" "fast_launch" {
  count = var.subnet_id == null ? 0 : 1

  name        = "${var.name_prefix}-fast-launch"
  description = "Fast Launch pre-provisioning instances of ${var.name_prefix}."

  network_interfaces {
    subnet_id       = var.subnet_id
    security_groups = [aws_security_group.build[0].id]
  }

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tags = local.tags
}

resource "aws_imagebuilder_distribution_configuration" "this" {
  #checkov:skip=CKV_AWS_199:The AMI keeps the recipe's encryption (the account's EBS key): see the recipe.
  name        = var.name_prefix
  description = "${var.name_prefix} AMIs in ${local.region}, with Fast Launch."

  distribution {
    region = local.region

    ami_distribution_configuration {
      name        = "${var.name_prefix}-{{ imagebuilder:buildDate }}"
      description = "Windows Server 2022 builder for the EC2-Windows action: ${join(", ", var.base_images)} cached."
      ami_tags    = merge(local.tags, { BaseImages = join(" ", var.base_images) })
    }

    fast_launch_configuration {
      account_id            = local.account_id
      enabled               = true
      max_parallel_launches = var.fast_launch_max_parallel_launches

      snapshot_configuration {
        target_resource_count = var.fast_launch_snapshots
      }

      dynamic "launch_template" {
        for_each = aws_launch_template.fast_launch
        content {
          launch_template_id      = launch_template.value.id
          launch_template_version = tostring(launch_template.value.latest_version)
        }
      }
    }

    ssm_parameter_configuration {
      parameter_name = local.image_id_parameter
      data_type      = "aws:ec2:image"
    }
  }

  tags = local.tags
}

resource "aws_imagebuilder_image_pipeline" "this" {
  name                             = var.name_prefix
  description                      = "Rebuilds the ${var.name_prefix} AMI: ${var.schedule_expression} (${var.schedule_timezone})."
  image_recipe_arn                 = aws_imagebuilder_image_recipe.this.arn
  infrastructure_configuration_arn = aws_imagebuilder_infrastructure_configuration.this.arn
  distribution_configuration_arn   = aws_imagebuilder_distribution_configuration.this.arn
  enhanced_image_metadata_enabled  = true

  schedule {
    schedule_expression = var.schedule_expression
    timezone            = var.schedule_timezone
    # Rebuild on every tick: the base images change on MCR whether or not the parent AMI did.
    pipeline_execution_start_condition = "EXPRESSION_MATCH_ONLY"
  }

  image_tests_configuration {
    image_tests_enabled = true
    timeout_minutes     = 120
  }

  tags = local.tags
}

# --- The optional mirror of the base images in ECR ------------------------------------------------------------------

resource "aws_ecr_repository" "mirror" {
  for_each = local.mirrors
  #checkov:skip=CKV_AWS_51:The mirror follows MCR's moving tags (ltsc2022): each build pushes the current image under the same tag.
  #checkov:skip=CKV_AWS_136:Encrypted at rest with AES-256 (ECR's default); public base images need no customer managed key.

  name                 = "${var.name_prefix}/${each.key}"
  image_tag_mutability = "MUTABLE"
  force_delete         = true # an example: destroy removes the mirrored images too

  image_scanning_configuration {
    scan_on_push = true
  }

  tags = local.tags
}
