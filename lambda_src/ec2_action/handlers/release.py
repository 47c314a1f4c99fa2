"""release (ReleaseInstance): terminate the job's instance. Idempotent; errors go to the state machine.

When acquire returned the instance, that instance is terminated by its id (one call). When it did not (acquire failed
or never ran), every live instance tagged with the job's id is found and terminated: a launch whose answer was lost
still leaves no instance behind.
"""

from __future__ import annotations

from typing import Any

from .. import instances, log
from ..config import load


def handler(event: dict[str, Any], context: Any) -> dict[str, list[str]]:
    state = event.get("state") or event
    job_id = state["job"]["id"]
    log.reset(job_id=job_id)
    instance_id = (state.get("instance") or {}).get("instance_id")
    if instance_id:
        terminated = instances.terminate([instance_id])
    else:
        terminated = instances.terminate_job_instances(load().stack, job_id)
    log.info("instances terminated", instance_ids=terminated)
    return {"terminated": terminated}
