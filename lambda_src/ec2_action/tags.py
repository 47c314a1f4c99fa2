"""Tag keys set on every build instance, its volume and network interface (DESIGN.md, "Instance tags")."""

STACK = "ec2-action:stack"
JOB_ID = "ec2-action:job-id"
PIPELINE = "ec2-action:pipeline"
PIPELINE_EXECUTION_ID = "ec2-action:pipeline-execution-id"
DEADLINE = "ec2-action:deadline"
NAME = "Name"
