"""release (ReleaseInstance): end the job's hold on capacity. Idempotent (the state machine retries it); errors go
to the state machine.

* A job still queued (its wait failed) leaves the queue.
* The job's member (acquire's `instance.member_id`): an ephemeral member's instance is terminated and its record
  removed; a pool member is retired (terminated, removed) when it must not serve again (pools.retire_reason: a failed
  or timed-out build, a failed reset, recycling, a changed configuration), else it goes back to the pool: warm ->
  `ready` as it is, stopped -> StopInstances (hibernating when the pool does) and `stopping`.
* No member known (acquire failed or never ran, or an execution of the definition before pools): every live instance
  tagged with the job's id is terminated (a launch whose answer was lost still leaves nothing behind), and every
  member leased to the job retired.
* Then the queue is served here if jobs wait (a slot or a member just freed), and the keeper is nudged when a pool
  member retired and the pool is below its minimum.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, instances, log, metrics, pools, queue, registry
from ..config import ActionType, Config, load
from ..registry import Member


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = event.get("state") or event
    job_id = state["job"]["id"]
    log.start(context, job_id=job_id)
    config = load()
    action = config.action(state["job"]["action"])
    instance = state.get("instance") or {}
    summary: dict[str, Any] = {"terminated": [], "returned": [], "stopped": [], "retired": [], "dropped": False}
    pool = instance.get("pool") or (action.key if action else None)
    if state.get("queued") and pool:
        summary["dropped"] = queue.drop(pool, job_id)

    member_id = instance.get("member_id")
    if member_id and pool:
        member = registry.member(pool, member_id)
        if member is not None and member.lease_job == job_id:
            _release_member(config, action, state, member, summary)
        elif instance.get("kind", "ephemeral") == "ephemeral":
            # The record is gone (a retried release after it was removed): terminating again is harmless.
            summary["terminated"] = instances.terminate_if_present([instance["instance_id"]])
    elif instance.get("instance_id"):
        summary["terminated"] = instances.terminate([instance["instance_id"]])  # an instance from before pools
    else:
        summary["terminated"] = instances.terminate_job_instances(config.stack, job_id)
        for leased in registry.leased_to(pool, job_id) if pool else []:
            if registry.retire(leased, "its job ended before the build ran"):
                summary["retired"].append(leased.id)

    if action is not None:
        if summary["retired"] and action.pooled:
            nudge_keeper_if_below_minimum(config, action)
        if summary["dropped"] or registry.counter(action.key).queued > 0:
            summary["granted"] = queue.serve(config, action)
    # Only what happened: {"terminated": [...]} alone for an ephemeral job, as before pools.
    output = {key: value for key, value in summary.items() if value or key == "terminated"}
    log.info("released", **output)
    if action is not None and _released_instance(summary, instance):
        _count_instance_seconds(action.key, instance)
    return output


def _released_instance(summary: dict[str, Any], instance: dict[str, Any]) -> bool:
    """Whether this release let go of the instance acquire gave the job (terminated, returned, stopped or retired),
    not when it was no longer the job's (the reaper recovered it). Only an invocation that succeeds emits, and the
    state machine retries only failed ones, so the job's instance time is counted once."""
    instance_id, member_id = instance.get("instance_id"), instance.get("member_id")
    held = (instance_id in summary["terminated"], instance_id in summary["returned"], instance_id in summary["stopped"])
    return bool(instance_id) and (any(held) or (bool(member_id) and member_id in summary["retired"]))


def _count_instance_seconds(action_key: str, instance: dict[str, Any]) -> None:
    """InstanceSeconds: the instance time the job held, from when its instance became the job's (launched, started
    or leased: `launched_epoch`) to this release, by purchase option."""
    held = max(time.time() - float(instance.get("launched_epoch") or time.time()), 0.0)
    purchase = "spot" if instance.get("lifecycle") == "spot" else "on-demand"
    metrics.emit({"InstanceSeconds": round(held, 3)}, Action=action_key, PurchaseOption=purchase)


def build_failed(state: dict[str, Any]) -> bool:
    """Whether the build failed or timed out: an error was caught, or the command did not succeed."""
    command = state.get("command") or {}
    return bool(state.get("error")) or command.get("status") != "Success" or command.get("response_code", 0) != 0


def _release_member(
    config: Config, action: ActionType | None, state: dict[str, Any], member: Member, summary: dict[str, Any]
) -> None:
    if not member.pooled or action is None or action.pool is None:
        if member.instance_id:
            summary["terminated"] = instances.terminate_if_present([member.instance_id])
        registry.remove(member)
        return
    worn = dataclasses.replace(member, builds=member.builds + 1)  # the build just ended counts
    build = state.get("build") or {}
    platform = str(build.get("platform") or "Linux")
    current = pools.pool_config(config, action, int(build.get("root_volume_gib") or 0), platform)
    command = state.get("command") or {}
    reason = pools.retire_reason(
        action.pool, worn, time.time(), current, build_failed(state), command.get("retire") or None
    )
    if reason is None and member.kind == "stopped":
        reason = _stop(member, action.pool.hibernate)
    if reason is not None:
        if registry.retire(member, reason):
            summary["retired"].append(member.id)
        return
    if member.kind == "stopped":
        registry.release_lease(member, member.lease_job or "", registry.STOPPING)
        summary["stopped"].append(member.instance_id)
    else:
        registry.release_lease(member, member.lease_job or "", registry.READY)
        summary["returned"].append(member.instance_id)


def _stop(member: Member, hibernate: bool) -> str | None:
    """Stop (or hibernate) a stopped pool's member after its build; a reason to retire it when EC2 refuses."""
    try:
        aws.client("ec2").stop_instances(InstanceIds=[member.instance_id], Hibernate=hibernate)
    except ClientError as exc:
        log.warning("cannot stop the member: retiring it", instance_id=member.instance_id, error=aws.error_code(exc))
        return f"StopInstances failed: {aws.error_code(exc)}"
    return None


def nudge_keeper_if_below_minimum(config: Config, action: ActionType) -> None:
    """A member retired: when the pool is below its minimum, ask the keeper (asynchronously) to refill it now rather
    than at its next scheduled pass. Best effort: the schedule refills it anyway."""
    available = [
        m
        for m in registry.members(action.key)
        if m.pooled and m.lease_job is None and m.state in (registry.READY, registry.STOPPING, registry.LAUNCHING)
    ]
    wanted = pools.desired_min(action.pool, time.time())
    if len(available) >= wanted:
        return
    payload = json.dumps({"nudge": "member retired", "action": action.key})
    try:
        aws.client("lambda").invoke(FunctionName=config.keeper_function_name, InvocationType="Event", Payload=payload)
    except ClientError as exc:
        log.warning("cannot nudge the keeper", error=aws.error_code(exc))
        return
    log.info("keeper nudged", ready=len(available), wanted=wanted)
