# A complete, minimal setup: a VPC whose private subnet reaches the internet through a NAT gateway, an encrypted
# artifact store, a source bucket, the module, and a pipeline S3 source -> build on EC2.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The Region is a variable, so zone names cannot be pinned; only the first zone is used.
  state = "available"
}

data "aws_ami" "al2023_arm64" {
  count = var.image_id == null ? 1 : 0

  most_recent = true
  owners      = ["amazon"]

  filter {
    # The standard image: the "minimal" one has no SSM Agent.
    name   = "name"
    values = ["al2023-ami-2023.*-kernel-*-arm64"]
  }

  filter {
    name   = "architecture"
    values = ["arm64"]
  }
}

locals {
  image_id   = coalesce(var.image_id, try(data.aws_ami.al2023_arm64[0].id, null))
  source_key = "source.zip"
  tags = {
    Example = "basic-linux"
    Stack   = var.name_prefix
  }
}

# --- Network: builders in a private subnet, outbound through NAT -------------------------------------------------

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

# --- Buckets: the artifact store (SSE-KMS) and the source ----------------------------------------------------------

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

# --- The module -----------------------------------------------------------------------------------------------------

module "ec2_action" {
  source = "../.."

  name_prefix = var.name_prefix
  actions = {
    linux = {
      provider          = var.action_provider
      version           = var.action_version
      previous_versions = var.action_previous_versions
      image_id          = local.image_id
      instance_type     = var.instance_type
      # Capacity: ephemeral by default; a warm or stopped pool keeps pool_min_ready instances ready.
      strategy              = var.capacity_strategy
      max_concurrent_builds = var.max_concurrent_builds
      pool                  = { min_ready = var.pool_min_ready, max_idle_minutes = var.pool_max_idle_minutes }
      # Purchase: on-demand by default; spot restarts an interrupted build on a new instance.
      purchase_option = var.purchase_option
      instance_types  = var.instance_types
    }
  }
  subnet_ids                       = [aws_subnet.private.id]
  artifact_bucket_arns             = [aws_s3_bucket.artifacts.arn]
  artifact_kms_key_arns            = [aws_kms_key.artifacts.arn]
  ssm_registration_timeout_minutes = var.ssm_registration_timeout_minutes
  tags                             = local.tags
}

# --- The pipeline: S3 source -> build on EC2 ------------------------------------------------------------------------

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
      name             = "BuildOnEC2"
      category         = module.ec2_action.action_types.linux.category
      owner            = module.ec2_action.action_types.linux.owner
      provider         = module.ec2_action.action_types.linux.provider
      version          = module.ec2_action.action_types.linux.version
      input_artifacts  = ["source"]
      output_artifacts = ["build"]
      configuration = {
        Command            = "bash build.sh"
        OutputArtifactPath = "dist"
        TimeoutMinutes     = "30"
      }
    }
  }

  tags = local.tags

  depends_on = [aws_iam_role_policy.pipeline]
}
