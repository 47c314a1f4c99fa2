"""Errors the state machine tells apart: the Lambda error type is the class name (see asl/build-job.asl.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class InvalidJobConfiguration(Exception):
    """The job's configuration breaks a guardrail or names an unusable AMI; never retried."""


class NoCapacity(Exception):
    """No subnet had capacity for the instance type; the state machine retries with backoff."""


class LaunchThrottled(Exception):
    """EC2 throttled RunInstances or StartInstances (RequestLimitExceeded) beyond the SDK's own retries: the
    account's request or resource bucket is empty for now. The state machine retries with backoff; the job's slot and
    the launch's client token stay, so a retry never launches twice."""


class InstanceLaunchFailed(Exception):
    """RunInstances failed for a reason other than capacity; never retried."""


class InstanceNotReady(Exception):
    """The instance did not come Online in Systems Manager within the registration window (wait_online), or Systems
    Manager could not reach it yet when the command was sent (run_command: retried)."""


class InstanceLost(Exception):
    """The instance stopped or terminated before the build ran; never retried."""


class CapacityTimeout(Exception):
    """The job waited for capacity (its action's max_concurrent_builds) until its build timeout left no time to
    build; never retried."""


class StackDestroyed(Exception):
    """The module is being destroyed (terraform destroy): the drain fails every queued job's wait with this error
    (drain.py); never retried."""


class SpotInterrupted(Exception):
    """EC2 reclaimed the build's spot instance (or is about to) before the build's result was read: the state machine
    goes back to AcquireInstance, which launches a fresh instance for the same job and runs the build again from the
    start (asl/build-job.asl.json). Raised by wait_online and run_command when they see it themselves; sent as the
    RunBuildCommand task's failure by the interruption function. Its message is interruption_cause's JSON."""


def interruption_cause(instance_id: str, reason: str, at: str, step: str) -> str:
    """SpotInterrupted's message (and the cause the interruption function sends): JSON that acquire reads back with
    interruption_of, whichever function raised or sent it."""
    return json.dumps({"instance_id": instance_id, "reason": reason, "at": at, "step": step})


def interruption_of(error: Mapping[str, Any]) -> dict[str, str]:
    """The details of a caught SpotInterrupted ({"Error", "Cause"} in the state): {"instance_id", "reason", "at",
    "step"}, those known. A Lambda's cause wraps the message in {"errorMessage": ...}; SendTaskFailure's is the message
    itself."""
    found: Any = _json(str(error.get("Cause") or ""))
    if isinstance(found, dict) and "errorMessage" in found:
        found = _json(str(found["errorMessage"]))
    if not isinstance(found, dict):
        return {}
    return {key: str(found[key]) for key in ("instance_id", "reason", "at", "step") if found.get(key)}


# The EC2 states of an instance on its way out: for a spot instance, EC2 reclaiming it (or anyone terminating it: the
# build restarts either way).
ENDING_STATES = ("shutting-down", "terminated")


def instance_gone(instance_id: str, state: str, reason: str, spot: bool, step: str, at: str) -> Exception:
    """The error for a build instance found gone in `step`: SpotInterrupted for a spot instance shutting down or
    terminated (the build restarts), InstanceLost otherwise (the build fails)."""
    if spot and state in ENDING_STATES:
        return SpotInterrupted(interruption_cause(instance_id, reason or state, at, step))
    return InstanceLost(f"instance {instance_id} is {state} ({reason or 'no reason given'})")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
