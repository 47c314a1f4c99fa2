# Windows container images built on Windows Server 2022 instances and pushed to ECR. S3 source (Dockerfile +
# build.ps1) -> build on EC2 -> imagedefinitions.json artifact. The builders run a stock Amazon AMI, any AMI you give,
# or the newest image of the windows-builder-image example (read from its SSM parameter), fresh per job or from a pool.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The Region is a variable, so zone names cannot be pinned; only the first zone is used.
  state = "available"
}

# The stock image, when neither image_id nor image_id_parameter_name is set.
data "aws_ami" "windows_2022_containers" {
  count = var.image_id == null && var.image_id_parameter_name == null ? 1 : 0

  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = ["Windows_Server-2022-English-Full-ContainersLatest-*"]
  }
}

# The builder image's newest AMI ID (its pipeline rewrites the parameter after each build).
data "aws_ssm_parameter" "image_id" {
  count = var.image_id_parameter_name == null ? 0 : 1

  name = var.image_id_parameter_name

  lifecycle {
    precondition {
      condition     = var.image_id == null
      error_message = "Set image_id or image_id_parameter_name, not both: the action runs one image."
    }
  }
}

locals {
  image_id = coalesce(
    var.image_id,
    try(data.aws_ssm_parameter.image_id[0].insecure_value, null),
    try(data.aws_ami.windows_2022_containers[0].id, null),
  )
  source_key = "source.zip"
  tags = {
    Example = "windows-container-pipeline"
    Stack   = var.name_prefix
  }

  # The memory of the instance type, computed as memory_gib in lambda_src/ec2_action/guardrails.py does, from the same
  # tables (tests/test_windows_example_tables.py fails when they differ): null when the tables cannot tell.
  gib_per_vcpu  = { c3 = 1.875, c4 = 1.875, m3 = 3.75, r3 = 7.625, r4 = 7.625, i3 = 7.625, c = 2, m = 4, r = 8 }
  burstable_gib = { nano = 0.5, micro = 1, small = 2, medium = 4, large = 8, xlarge = 16, "2xlarge" = 32 }
  # The hibernation limit of Windows (WINDOWS_HIBERNATION_MAX_MEMORY_GIB there).
  windows_hibernation_max_memory_gib = 16
  instance_family                    = split(".", var.instance_type)[0]
  instance_size                      = try(split(".", var.instance_type)[1], "")
  size_vcpus = (
    local.instance_size == "medium" ? 1 : local.instance_size == "large" ? 2 :
    can(regex("^[0-9]*xlarge$", local.instance_size)) ? 4 * tonumber(coalesce(trimsuffix(local.instance_size, "xlarge"), "1")) : null
  )
  memory_per_vcpu_gib = lookup(local.gib_per_vcpu, local.instance_family, lookup(local.gib_per_vcpu, substr(local.instance_family, 0, 1), null))
  instance_memory_gib = (
    contains(["t2", "t3", "t3a"], local.instance_family) ? lookup(local.burstable_gib, local.instance_size, null) :
    local.memory_per_vcpu_gib == null || local.size_vcpus == null ? null : local.size_vcpus * local.memory_per_vcpu_gib
  )
}

# --- Network: builders in a private subnet, outbound through NAT (base images come from mcr.microsoft.com) ---------

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:An example VPC: flow logs need their own log group and role; production stacks bring their own VPC.
  cidr_block           = var.vpc_cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = var.name_prefix })
}

# The default security group admits all traffic between its members. Nothing here uses it: it allows nothing.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name_prefix}-default-unused" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = var.name_prefix })
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.vpc_cidr_block, 8, 0)
  availability_zone = data.aws_availability_zones.available.names[0]
  tags              = merge(local.tags, { Name = "${var.name_prefix}-public" })
}

resource "aws_subnet" "private" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.vpc_cidr_block, 8, 1)
  availability_zone = data.aws_availability_zones.available.names[0]
  tags              = merge(local.tags, { Name = "${var.name_prefix}-private" })
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = merge(local.tags, { Name = "${var.name_prefix}-nat" })
}

resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  tags          = merge(local.tags, { Name = var.name_prefix })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name_prefix}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name_prefix}-private" })
}

resource "aws_route" "private_internet" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this.id
}

resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}

# --- Buckets and the image repository ------------------------------------------------------------------------------

resource "aws_kms_key" "artifacts" {
  #checkov:skip=CKV2_AWS_64:The default key policy (the account decides through IAM) is what the pipeline and builder roles rely on.
  description             = "Artifacts of the ${var.name_prefix} pipeline."
  enable_key_rotation     = true
  deletion_window_in_days = 7
  tags                    = local.tags
}

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:An example: access logs need a second bucket; use them or CloudTrail data events in production.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events (the example starts its pipeline by hand).
  #checkov:skip=CKV_AWS_144:Artifacts are rebuilt by the pipeline and the source is a copy: no cross-Region replica needed.
  bucket_prefix = "${var.name_prefix}-artifacts-"
  force_destroy = true # an example: destroy removes the artifacts too
  tags          = local.tags
}

resource "aws_s3_bucket" "source" {
  #checkov:skip=CKV_AWS_18:An example: access logs need a second bucket; use them or CloudTrail data events in production.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events (the example starts its pipeline by hand).
  #checkov:skip=CKV_AWS_144:Artifacts are rebuilt by the pipeline and the source is a copy: no cross-Region replica needed.
  bucket_prefix = "${var.name_prefix}-source-"
  force_destroy = true
  tags          = local.tags
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

# CodePipeline's S3 source action requires a versioned bucket.
resource "aws_s3_bucket_versioning" "source" {
  bucket = aws_s3_bucket.source.id
  versioning_configuration {
    status = "Enabled"
  }
}

# Both buckets would otherwise grow with every run: old artifacts expire, and so do superseded source versions.
resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    id     = "expire-old-artifacts"
    status = "Enabled"
    filter {}

    expiration {
      days = 30
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_s3_bucket_lifecycle_configuration" "source" {
  bucket = aws_s3_bucket.source.id

  rule {
    id     = "expire-superseded-sources"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.source]
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.artifacts.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "source" {
  bucket = aws_s3_bucket.source.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.artifacts.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_public_access_block" "source" {
  bucket                  = aws_s3_bucket.source.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_ecr_repository" "app" {
  #checkov:skip=CKV_AWS_136:Encrypted at rest with AES-256 (ECR's default); a customer managed key adds nothing for an example image.
  name                 = "${var.name_prefix}/hello"
  image_tag_mutability = "IMMUTABLE" # each image is tagged with its pipeline execution id
  force_delete         = true        # an example: destroy removes the images too

  image_scanning_configuration {
    scan_on_push = true
  }

  tags = local.tags
}

# What the builder may do beyond artifacts: push to this one repository.
resource "aws_iam_policy" "ecr_push" {
  name        = "${var.name_prefix}-ecr-push"
  description = "Lets the ${var.name_prefix} builders push images to ${aws_ecr_repository.app.name}."
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
        Sid    = "PushToTheRepository"
        Effect = "Allow"
        Action = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload",
          "ecr:UploadLayerPart",
          "ecr:CompleteLayerUpload",
          "ecr:PutImage",
        ]
        Resource = [aws_ecr_repository.app.arn]
      },
    ]
  })
  tags = local.tags
}

# --- The module -----------------------------------------------------------------------------------------------------

module "ec2_action" {
  source = "../.."

  name_prefix = var.name_prefix
  actions = {
    windows = {
      provider      = "EC2-Windows"
      image_id      = local.image_id
      instance_type = var.instance_type
      # Windows first boot, base image pulls and a container build take a while.
      timeout_minutes      = 90
      root_volume_size_gib = var.root_volume_size_gib
      # Capacity (see the README, "Choosing the capacity"): ephemeral by default; a warm or stopped pool keeps
      # pool_min_ready instances ready, with their Docker image cache.
      strategy              = var.capacity_strategy
      max_concurrent_builds = var.max_concurrent_builds
      pool = {
        min_ready        = var.pool_min_ready
        hibernate        = var.pool_hibernate
        max_idle_minutes = var.pool_max_idle_minutes
      }
    }
  }
  subnet_ids                       = [aws_subnet.private.id]
  artifact_bucket_arns             = [aws_s3_bucket.artifacts.arn]
  artifact_kms_key_arns            = [aws_kms_key.artifacts.arn]
  builder_iam_policy_arns          = [aws_iam_policy.ecr_push.arn]
  ssm_registration_timeout_minutes = 20
  tags                             = local.tags
}

# --- The pipeline: S3 source -> docker build and push on Windows -------------------------------------------------

resource "aws_iam_role" "pipeline" {
  name = "${var.name_prefix}-pipeline"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "codepipeline.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "pipeline" {
  name = "artifacts-and-source"
  role = aws_iam_role.pipeline.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ArtifactStore"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetBucketVersioning"]
        Resource = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]
      },
      {
        Sid      = "Source"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketVersioning"]
        Resource = [aws_s3_bucket.source.arn, "${aws_s3_bucket.source.arn}/*"]
      },
      {
        Sid      = "ArtifactKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.artifacts.arn]
      },
    ]
  })
}

resource "aws_codepipeline" "this" {
  name     = var.name_prefix
  role_arn = aws_iam_role.pipeline.arn

  artifact_store {
    type     = "S3"
    location = aws_s3_bucket.artifacts.bucket
    encryption_key {
      id   = aws_kms_key.artifacts.arn
      type = "KMS"
    }
  }

  stage {
    name = "Source"
    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "S3"
      version          = "1"
      output_artifacts = ["source"]
      configuration = {
        S3Bucket             = aws_s3_bucket.source.bucket
        S3ObjectKey          = local.source_key
        PollForSourceChanges = "false"
      }
    }
  }

  stage {
    name = "Build"
    action {
      name             = "BuildWindowsImage"
      category         = module.ec2_action.action_types.windows.category
      owner            = module.ec2_action.action_types.windows.owner
      provider         = module.ec2_action.action_types.windows.provider
      version          = module.ec2_action.action_types.windows.version
      input_artifacts  = ["source"]
      output_artifacts = ["imagedefinitions"]
      configuration = {
        Command            = "./build.ps1 -RepositoryUri '${aws_ecr_repository.app.repository_url}' -ContainerName hello"
        OutputArtifactPath = "imagedefinitions.json"
      }
    }
  }

  tags = local.tags

  depends_on = [aws_iam_role_policy.pipeline]

  # Hibernation against the instance type's memory (a validation block of Terraform 1.5 sees only its own variable;
  # the module's validation refuses hibernate outside a stopped pool, and a family that cannot hibernate).
  lifecycle {
    precondition {
      condition     = !var.pool_hibernate || try(local.instance_memory_gib <= local.windows_hibernation_max_memory_gib, false)
      error_message = "pool_hibernate: AWS hibernates Windows instances of at most 16 GiB of memory, and ${var.instance_type} ${local.instance_memory_gib == null ? "is not known here to have at most 16 GiB" : "has ${local.instance_memory_gib} GiB"}. Use such a type (e.g. m5.xlarge, c5.2xlarge, r5.large, t3.xlarge), or a stopped pool without hibernation."
    }
  }
}
