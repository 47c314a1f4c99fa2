"""release (ReleaseInstance): terminate every instance of this job. Idempotent; errors go to the state machine."""

from __future__ import annotations

from typing import Any

from .. import aws, log, tags
from ..config import load

LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


def handler(event: dict[str, Any], context: Any) -> dict[str, list[str]]:
    job_id = event["job"]["id"]
    log.reset(job_id=job_id)
    ec2 = aws.client("ec2")
    filters = [
        {"Name": f"tag:{tags.JOB_ID}", "Values": [job_id]},
        {"Name": f"tag:{tags.STACK}", "Values": [load().stack]},
        {"Name": "instance-state-name", "Values": LIVE_STATES},
    ]
    instance_ids = [
        instance["InstanceId"]
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]
    if instance_ids:
        ec2.terminate_instances(InstanceIds=instance_ids)
    log.info("instances terminated", instance_ids=instance_ids)
    return {"terminated": sorted(instance_ids)}
