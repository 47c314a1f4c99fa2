"""A finished job's metrics (DESIGN.md, "Metrics"): its result by cause and where its time went, from the state the
steps left behind, emitted by report as one EMF line.

The time from the STARTED event to the command's start splits into the queue wait (`grant.waited_seconds`), acquire's
own call (`instance.acquire_seconds`), the boot to SSM Online (`instance.launched_epoch` -> `ssm.online_at`) and the
rest, the module's own overhead (polling, the state machine's steps, sending the command). A piece the state lacks
(a job that failed before it, an execution started by an older definition) leaves its metric out; the overhead
needs all of them. After a spot restart the state holds the last attempt, so the earlier attempts' time is overhead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import metrics
from .messages import CONFIGURATION_ERROR
from .payloads import Result

RESULTS = (
    "Succeeded",
    "CommandFailed",
    "TimedOut",
    "NoCapacity",
    "ConfigurationError",
    "InstanceNotReady",
    "InstanceLost",
    "CapacityTimeout",
    "Other",
)
# Errors caught by a step's Catch ($.error.Error) that name their cause.
ERROR_RESULTS = {
    "InvalidJobConfiguration": "ConfigurationError",
    "NoCapacity": "NoCapacity",
    "InstanceNotReady": "InstanceNotReady",
    "InstanceLost": "InstanceLost",
    "CapacityTimeout": "CapacityTimeout",
}


def result_cause(state: Mapping[str, Any], result: Result) -> str:
    """The job's result as one of RESULTS (low cardinality: the JobsFinished metric's Result dimension)."""
    if result["succeeded"]:
        return "Succeeded"
    if result.get("failure_type") == CONFIGURATION_ERROR:
        return "ConfigurationError"
    error = state.get("error") or {}
    if error:
        name = str(error.get("Error") or "")
        if name == "States.Timeout":  # Step Functions' own timeout of the step that waited
            return "CapacityTimeout" if state.get("failed_step") == "WaitForCapacity" else "TimedOut"
        return ERROR_RESULTS.get(name, "Other")
    command = state.get("command") or {}
    status = command.get("status")
    if status == "TimedOut":
        # The agent never received the command: Systems Manager lost the instance, the build did not time out.
        return "InstanceLost" if command.get("status_details") == "DeliveryTimedOut" else "TimedOut"
    if status in ("Failed", "Cancelled", "Cancelling", "Success"):  # Success with a non-zero code fails too
        return "CommandFailed"
    return "Other"


def phases(state: Mapping[str, Any]) -> dict[str, float]:
    """The job's timing metrics (seconds) the state has the pieces for; none is negative (clocks of different
    services may disagree by a fraction of a second)."""
    job = state.get("job") or {}
    instance = state.get("instance") or {}
    command = state.get("command") or {}
    online_at = (state.get("ssm") or {}).get("online_at")
    found: dict[str, float] = {}
    if instance.get("instance_id"):  # capacity was granted: 0 when the job did not queue
        found["QueueWaitSeconds"] = float((state.get("grant") or {}).get("waited_seconds") or 0)
    if instance.get("acquire_seconds") is not None:
        found["AcquireSeconds"] = float(instance["acquire_seconds"])
    if online_at is not None and instance.get("launched_epoch"):
        found["BootSeconds"] = float(online_at) - float(instance["launched_epoch"])
    command_start, command_end = command.get("started_at"), command.get("ended_at")
    if job.get("started_at") and command_start:
        found["TimeToCommandSeconds"] = float(command_start) - float(job["started_at"])
        parts = ("QueueWaitSeconds", "AcquireSeconds", "BootSeconds")
        if all(part in found for part in parts):
            found["OverheadSeconds"] = found["TimeToCommandSeconds"] - sum(found[part] for part in parts)
    if command_start and command_end:
        found["BuildSeconds"] = float(command_end) - float(command_start)
    return {name: round(max(seconds, 0.0), 3) for name, seconds in found.items()}


def emit_job_metrics(state: Mapping[str, Any], result: Result, action_key: str) -> dict[str, Any] | None:
    """One EMF line: JobsFinished (1, by Result) and the job's phases."""
    cause = result_cause(state, result)
    properties = {"job_id": str(state["job"]["id"])} if state.get("job") else None
    return metrics.emit({"JobsFinished": 1, **phases(state)}, properties, Action=action_key, Result=cause)
