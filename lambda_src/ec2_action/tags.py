"""Tag keys of build instances (DESIGN.md, "Instance tags"): set at launch on the instance, its volume and network
interface; the reaper's marks; the operator's bypass tag. Terraform's IAM conditions, launch template and tags
validation name them too: tests/test_shared_constants.py keeps both sides equal."""

STACK = "ec2-action:stack"
JOB_ID = "ec2-action:job-id"
PIPELINE = "ec2-action:pipeline"
PIPELINE_EXECUTION_ID = "ec2-action:pipeline-execution-id"
DEADLINE = "ec2-action:deadline"
NAME = "Name"

# Set and removed by the reaper only (its IAM policy allows no other keys).
ORPHANED_AT = "ec2-action:orphaned-at"
ORPHAN_REASON = "ec2-action:orphan-reason"
# Set by an operator (any value) to keep an instance for debugging: the reaper logs it but never touches it.
KEEP = "ec2-action:keep"

# Instances of the capacity registry (DESIGN.md, "Instance pools"): the action key whose cap the instance counts
# against, and its member record's id. The reaper tells a pooled instance from an orphan by its member record.
POOL = "ec2-action:pool"
MEMBER = "ec2-action:member"
