"""enqueue (WaitForCapacity, lambda:invoke.waitForTaskToken): queue a job that found its action at its cap, with the
task token its execution waits on, then serve the queue at once (capacity may have freed since acquire looked).

Returns nothing the state machine reads: the token is answered later, by whoever grants the job capacity
(SendTaskSuccess `{"member_id", "waited_seconds"}`) or fails it at its deadline (CapacityTimeout).

Input: `{"task_token", "job", "build", "execution_arn"}`.
"""

from __future__ import annotations

import time
from typing import Any

from .. import log, pools, queue
from ..config import load
from ..errors import InvalidJobConfiguration

# The queue fails an entry this long before its task's own timeout (TimeoutSecondsPath: the build's task timeout),
# so that the job ends with the queue's message (how long it waited, what to change) rather than a bare timeout:
# two passes of the keeper, which runs every minute.
EXPIRY_MARGIN_SECONDS = 120


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = event["job"]
    build = event["build"]
    log.start(context, job_id=job["id"], execution_arn=event.get("execution_arn"))
    config = load()
    action = config.action(job["action"])
    if action is None:
        raise InvalidJobConfiguration(f"the action type {job['action']} is no longer served by this module")
    now = time.time()
    kind = action.strategy if pools.job_matches_pool(action, job.get("configuration") or {}) else "ephemeral"
    deadline = now + max(int(build["task_timeout_seconds"]) - EXPIRY_MARGIN_SECONDS, 0)
    entry = queue.enqueue(
        action,
        job["id"],
        event.get("execution_arn") or "",
        event["task_token"],
        deadline,
        pools.build_config(config, action, build),
        kind,
        now,
    )
    granted = queue.serve(config, action)
    log.info("queued for capacity", entry=entry.id, granted_at_once=job["id"] in granted, granted=len(granted))
    return {"queued": entry.id, "granted": granted}
