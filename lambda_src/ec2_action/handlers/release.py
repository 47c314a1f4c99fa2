"""release (ReleaseInstance): terminate every instance of this job. Idempotent; errors go to the state machine.
The reaper uses terminate_job_instances too, for jobs whose execution ended without releasing."""

from __future__ import annotations

from typing import Any

from .. import instances, log, tags
from ..config import load


def terminate_job_instances(job_id: str, spare_kept: bool = False) -> list[str]:
    """Terminate every live instance of this stack tagged with the job's id (sparing those tagged ec2-action:keep
    if asked); the sorted ids."""
    found = instances.find(load().stack, job_id=job_id)
    if spare_kept:
        found = [instance for instance in found if tags.KEEP not in instances.tag_values(instance)]
    return instances.terminate(instance["InstanceId"] for instance in found)


def handler(event: dict[str, Any], context: Any) -> dict[str, list[str]]:
    job_id = event["job"]["id"]
    log.reset(job_id=job_id)
    terminated = terminate_job_instances(job_id)
    log.info("instances terminated", instance_ids=terminated)
    return {"terminated": terminated}
