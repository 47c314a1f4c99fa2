locals {
  # The scripts live in the repository root (ssm/) so that shellcheck and the local cloud read the same files.
  scripts_dir = "${path.module}/../../ssm"
}

resource "aws_ssm_document" "run_build" {
  name            = "${var.name_prefix}-run-build"
  document_type   = "Command"
  document_format = "JSON"
  target_type     = "/AWS::EC2::Instance"
  content = templatefile("${local.scripts_dir}/run-build.json.tftpl", {
    linux_script_lines   = jsonencode(split("\n", file("${local.scripts_dir}/linux/run-build.sh")))
    windows_script_lines = jsonencode(split("\n", file("${local.scripts_dir}/windows/run-build.ps1")))
  })
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "builds" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days input (default 30 days): a year of build output is the user's call.
  name              = "/${var.name_prefix}/builds"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}
