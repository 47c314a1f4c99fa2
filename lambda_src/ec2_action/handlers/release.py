"""release (ReleaseInstance): terminate every instance of this job. Idempotent; errors go to the state machine."""

from __future__ import annotations

from typing import Any

from .. import instances, log
from ..config import load


def handler(event: dict[str, Any], context: Any) -> dict[str, list[str]]:
    job_id = event["job"]["id"]
    log.reset(job_id=job_id)
    terminated = instances.terminate_job_instances(load().stack, job_id)
    log.info("instances terminated", instance_ids=terminated)
    return {"terminated": terminated}
