# The document's content is rendered by a provider-free module, which the handler tests render too.
module "content" {
  source = "../ssm_document_content"
}

resource "aws_ssm_document" "run_build" {
  name            = "${var.name_prefix}-run-build"
  document_type   = "Command"
  document_format = "JSON"
  target_type     = "/AWS::EC2::Instance"
  content         = module.content.json
  tags            = var.tags
}

resource "aws_cloudwatch_log_group" "builds" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days input (default 30 days): a year of build output is the user's call.
  name              = "/${var.name_prefix}/builds"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}
