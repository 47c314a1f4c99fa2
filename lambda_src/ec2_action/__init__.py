"""Lambda payloads of terraform-aws-codepipeline-ec2-action: one handler per step, a small shared library."""
