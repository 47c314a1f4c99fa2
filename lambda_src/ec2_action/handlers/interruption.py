"""interruption: EC2's events about a builder going away end the build's wait for its command, so that the state
machine restarts the build on a fresh instance (spot) or fails it at once (on-demand) instead of waiting for its
timeout.

* "EC2 Spot Instance Interruption Warning" (two minutes before EC2 reclaims the instance) and "EC2 Instance
  State-change Notification" to shutting-down or terminated act; the warning is best effort, so the state change
  acts too (when the warning acted first, no token is left: nothing to do).
* "EC2 Instance Rebalance Recommendation" is only logged: acting on it would restart builds that may never be
  interrupted.

Acting: the instance is found in EC2 and must be this stack's; its member record names the job leasing it; the job's
item must await a command on this very instance (during the wait for Systems Manager there is no token:
wait_online notices by itself). A command that already ended keeps its result (delivered here, never run twice).
Else the token is taken from the item (only if it is still that token), the command cancelled (best effort) and the
RunBuildCommand task failed: SpotInterrupted for a spot instance, InstanceLost for an on-demand one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, instances, jobs, log, outcome, registry, tags
from ..config import load
from ..errors import ENDING_STATES, InstanceLost, SpotInterrupted, interruption_cause

WARNING = "EC2 Spot Instance Interruption Warning"
STATE_CHANGE = "EC2 Instance State-change Notification"
REBALANCE = "EC2 Instance Rebalance Recommendation"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind, detail = event.get("detail-type", ""), event.get("detail") or {}
    instance_id = detail.get("instance-id", "")
    log.start(context, instance_id=instance_id, event=kind, state=detail.get("state"))
    if kind == REBALANCE:
        log.info("rebalance recommendation: logged only (the instance may never be interrupted)")
        return {"acted": False, "why": "rebalance recommendation"}
    if kind == WARNING:
        reason = f"spot interruption warning ({detail.get('instance-action', 'terminate')})"
    elif kind == STATE_CHANGE and detail.get("state") in ENDING_STATES:
        reason = str(detail["state"])
    else:
        return {"acted": False, "why": "not an event about a builder going away"}
    why = _act(instance_id, reason, event.get("time") or datetime.now(UTC).isoformat(timespec="seconds"))
    log.info("interruption handled" if why is None else f"ignored: {why}")
    return {"acted": why is None, "why": why or "the build's wait was ended"}


def _act(instance_id: str, reason: str, at: str) -> str | None:
    """End the wait of the build running on the instance; None when it did, else why nothing was done."""
    found = _describe(instance_id)
    if found is None:
        return "EC2 does not know the instance"
    labels = instances.tag_values(found)
    if labels.get(tags.STACK) != load().stack:
        return "not an instance of this stack"
    member = registry.member(labels.get(tags.POOL, ""), labels.get(tags.MEMBER, "")) if tags.MEMBER in labels else None
    if member is None or member.lease_job is None or member.instance_id != instance_id:
        return "no job holds the instance (an idle pool member: the keeper retires it)"
    if member.state == registry.RETIRING:
        return "its job's release is ending the instance"
    item = jobs.get(member.lease_job)
    if item is None or not item.get("task_token") or item.get("instance_id") != instance_id:
        return "the job awaits no command on the instance (wait_online and run_command notice by themselves)"
    log.bind(job_id=item["job_id"], execution_arn=item.get("execution_arn"))
    command = outcome.awaited(item)
    if command and command.get("Status") in outcome.TERMINAL:
        outcome.deliver(item, command["CommandId"])
        return "the command had already ended: its outcome stands (delivered)"
    if not jobs.take_token(item["job_id"], item["task_token"]):
        return "the task was answered meanwhile"
    if command:
        _cancel(command["CommandId"], instance_id)
    return _fail_task(item["task_token"], found, reason, at)


def _describe(instance_id: str) -> dict[str, Any] | None:
    try:
        reservations = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if aws.error_code(exc) == "InvalidInstanceID.NotFound":
            return None
        raise
    found: dict[str, Any] | None = reservations[0]["Instances"][0] if reservations else None
    return found


def _cancel(command_id: str, instance_id: str) -> None:
    """Stop the build's command on an instance that goes away anyway (its output would only mislead)."""
    try:
        aws.client("ssm").cancel_command(CommandId=command_id, InstanceIds=[instance_id])
    except ClientError as exc:
        log.warning("cannot cancel the build command", command_id=command_id, error=aws.error_code(exc))


def _fail_task(token: str, instance: dict[str, Any], reason: str, at: str) -> str | None:
    """Fail the RunBuildCommand task; None when it was failed, else why not."""
    instance_id = instance["InstanceId"]
    state_reason = (instance.get("StateReason") or {}).get("Message") or reason
    if instance.get("InstanceLifecycle") == "spot":
        error, cause = SpotInterrupted.__name__, interruption_cause(instance_id, state_reason, at, "RunBuildCommand")
    else:
        error, cause = InstanceLost.__name__, f"instance {instance_id} was terminated during the build ({state_reason})"
    try:
        aws.client("stepfunctions").send_task_failure(taskToken=token, error=error, cause=cause)
    except ClientError as exc:
        if aws.error_code(exc) not in outcome.DEAD_TOKEN_ERRORS:
            raise
        log.info("SendTaskFailure refused", error=aws.error_code(exc))
        return "the task no longer waits (the execution moved on)"
    log.info("build task failed", error=error, cause=cause)
    return None
