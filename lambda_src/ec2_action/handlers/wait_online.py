"""wait_online (WaitForSsmOnline): wait, inside this invocation, until the build instance is Online in Systems
Manager (registration: learned per AMI, instance type and boot kind, checked every second around the expected time).
A launched or started instance is first checked just before its learned time; a ready pool member (`boot: ready`)
teaches nothing: acquire found it Online as it leased it (`online_checked`), so it is online at once without a
request (a ready member from an acquire that did not check is checked at once).

Waiting is not an error: the output says `online`, and the state machine invokes the function again only when a
registration outlasts one invocation. InstanceNotReady when the registration window ends, InstanceLost when the
instance goes away meanwhile: both end the build. A spot instance shutting down or terminated meanwhile was reclaimed
by EC2: SpotInterrupted, and the state machine restarts the build on a fresh instance.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .. import log, registration
from ..config import load
from ..errors import InstanceNotReady, instance_gone

# Left of the invocation's time when the wait gives up its turn (the next invocation goes on).
RESERVED_SECONDS = 15.0


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    instance = event["instance"]
    build = event["build"]
    instance_id = instance["instance_id"]
    log.start(context, job_id=event.get("job_id"), instance_id=instance_id)
    boot = instance.get("boot", "launch")  # an instance from before pools was launched
    if boot == "ready" and instance.get("online_checked"):
        log.info("instance online", checks=0, boot=boot, checked_by="acquire")
        return {
            "online": True,
            "checks": 0,
            # Online when acquire checked it: no boot time (the report's BootSeconds is 0).
            "online_at": float(instance.get("launched_epoch") or time.time()),
            "platform_type": instance.get("platform_type", ""),
            "agent_version": instance.get("agent_version", ""),
        }
    config = load()
    launched = float(instance.get("launched_epoch") or time.time())
    learns = boot in registration.LEARNED_BOOTS
    previous = registration.learned(build["image_id"], build["instance_type"], boot) if learns else None
    waiting = registration.Waiting(
        launched=launched,
        deadline=launched + config.ssm_registration_timeout_seconds,
        expected=previous.seconds if previous else None,
    )
    try:
        outcome = registration.wait(instance_id, waiting, lambda: _time_left(context))
    except registration.Lost as exc:
        read, at = exc.state, datetime.now(UTC).isoformat(timespec="seconds")
        raise instance_gone(instance_id, read.name, read.reason, read.spot, "WaitForSsmOnline", at) from exc
    if outcome.online and outcome.info is not None:
        online_at = time.time()
        seconds = waiting.registration_seconds(online_at)
        learned = learns and registration.learn(
            build["image_id"], build["instance_type"], seconds, previous, online_at, waiting.bounded, boot
        )
        info = outcome.info
        log.info(
            "instance online",
            checks=outcome.checks,
            waited_seconds=round(outcome.waited, 2),
            registration_seconds=round(seconds, 1),
            expected_seconds=previous.seconds if previous else None,
            learned=learned,
            boot=boot,
            platform=info.get("PlatformType"),
            agent=info.get("AgentVersion"),
        )
        return {
            "online": True,
            "checks": outcome.checks,
            "online_at": round(online_at, 3),  # the report's BootSeconds ends here
            "platform_type": info.get("PlatformType", ""),
            "agent_version": info.get("AgentVersion", ""),
        }
    if time.time() >= waiting.deadline:
        raise InstanceNotReady(
            f"instance {instance_id} is {outcome.last_state or 'unknown'}; Systems Manager status: not Online "
            f"after {outcome.checks} checks"
        )
    log.info("still waiting for Systems Manager; the next invocation goes on", checks=outcome.checks)
    return {"online": False, "checks": outcome.checks}


def _time_left(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return (remaining() / 1000 - RESERVED_SECONDS) if remaining else 600.0
