"""Builder instances of this stack, found by their tags (DESIGN.md, "Instance tags"). Used by release and reap."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from . import aws, tags

# Every state in which an instance still exists (and costs), "shutting-down" included.
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")


def find(stack: str, states: Iterable[str] = LIVE_STATES, job_id: str | None = None) -> list[dict[str, Any]]:
    """The stack's instances in these states (of one job, if given), as DescribeInstances returns them."""
    filters = [
        {"Name": f"tag:{tags.STACK}", "Values": [stack]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    if job_id is not None:
        filters.append({"Name": f"tag:{tags.JOB_ID}", "Values": [job_id]})
    return [
        instance
        for page in aws.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]


def tag_values(instance: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("Tags") or []}


def terminate(instance_ids: Iterable[str]) -> list[str]:
    """Terminate these instances (idempotent); the sorted ids."""
    ids = sorted(instance_ids)
    if ids:
        aws.client("ec2").terminate_instances(InstanceIds=ids)
    return ids


def terminate_if_present(instance_ids: Iterable[str]) -> list[str]:
    """Terminate these instances, those EC2 no longer knows (terminated long ago) being fine: the sorted ids."""
    try:
        return terminate(instance_ids)
    except ClientError as exc:
        if aws.error_code(exc) != "InvalidInstanceID.NotFound":
            raise
    ids = sorted(instance_ids)
    for instance_id in ids:  # one at a time: a request naming an unknown id terminates none of the others
        try:
            terminate([instance_id])
        except ClientError as exc:
            if aws.error_code(exc) != "InvalidInstanceID.NotFound":
                raise
    return ids


def terminate_job_instances(stack: str, job_id: str, spare_kept: bool = False) -> list[str]:
    """Terminate every live instance of the stack tagged with the job's id (sparing those tagged ec2-action:keep if
    asked); the sorted ids. Release ends every job with it, the reaper the jobs whose execution ended unreleased."""
    found = find(stack, job_id=job_id)
    if spare_kept:
        found = [instance for instance in found if tags.KEEP not in tag_values(instance)]
    return terminate(instance["InstanceId"] for instance in found)
