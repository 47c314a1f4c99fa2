# The keeper, invoked by Terraform itself (DESIGN.md, "Instance pools"; lambda_src/ec2_action/drain.py).
#
# Destroy: pool members and the instances of running builds are launched by the functions, not by Terraform, and
# nothing would end them once the functions are gone. This invocation depends on everything the keeper needs (the
# function, its role's policy, the registry table, its log group), so Terraform destroys it first, and the provider
# then invokes the keeper with {"tf": {"action": "delete"}}: the drain terminates every instance of the stack, fails
# the queued jobs and empties the registry before any of those is removed. If the drain fails, the destroy stops before
# them (run it again): nothing the drain needs is gone.
#
# Apply: on create, and whenever the functions' configuration changes (a pool's settings, a cap, the action's image or
# instance type, the launch template version), the provider invokes the keeper with {"tf": {"action": "create" |
# "update"}}: one pass at once, so that a new minimum is filled and a changed pool rotated during the apply rather than
# at the next scheduled pass. The input is not replaced by a change (lifecycle_scope CRUD updates it in place), so an
# apply never drains; `function_name` alone forces a replacement, and it changes only with name_prefix (a new stack).
resource "aws_lambda_invocation" "keeper" {
  function_name   = aws_lambda_function.this["keeper"].function_name
  lifecycle_scope = "CRUD"
  terraform_key   = "tf" # where the provider puts the lifecycle action: drain.TERRAFORM_KEY
  input = jsonencode({
    configuration = sha256(local.config_json)
  })

  depends_on = [
    aws_lambda_function.this,
    aws_iam_role_policy.lambda,
    aws_dynamodb_table.pool,
    aws_cloudwatch_log_group.lambda,
  ]
}
