"""acquire (AcquireInstance): validate the job (buildspec: defaults, guardrails, the AMI), take capacity for it in
the registry (its action's cap, counted in the table) and make its instance available. One step, so that nothing
waits between the two.

Capacity (DESIGN.md, "Instance pools"): a ready pool member of the job's configuration is leased (warm: used as it is
once one DescribeInstanceInformation finds it Online, `boot: ready`; stopped: started, `boot: start`); a leased member
whose instance cannot serve (not Online, gone, not stopped, no capacity to start it) is terminated and a fresh
instance launched into the same member (`boot: launch`), so that the job keeps its slot. Else a slot below the cap is
reserved and an instance launched into it (`boot: launch`): a pool member when the job matches the pool's
configuration, otherwise an ephemeral member under the same cap. At the cap, or with jobs queued before it, the job
queues: the output says `queued: true` and the state machine's WaitForCapacity step writes the queue entry with its
task token. When capacity is granted, the execution comes back here with `grant`: the granted member is taken and the
wait is taken off the build's timeout.

Input: `{"state": <the state machine's state>, "execution_arn"}` (or the older `{"job", "execution_arn"}`).
Output: `{"job", "build", "instance" | null, "queued", "grant"?}`.
"""

from __future__ import annotations

import time
from typing import Any

from .. import buildspec, instances, launcher, log, pools, queue, registration, registry
from ..config import ActionType, Config, load
from ..errors import CapacityTimeout, InvalidJobConfiguration
from ..launcher import CannotStart
from ..payloads import BuildSpec, Instance, Job
from ..registry import Member

# Kept here for the module's variable descriptions (tests/test_shared_constants.py).
SHUTDOWN_GRACE_MINUTES = launcher.SHUTDOWN_GRACE_MINUTES
user_data = launcher.user_data
subnet_rotation = launcher.subnet_rotation


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state: dict[str, Any] = event.get("state") or event
    job: Job = state["job"]
    execution_arn = event.get("execution_arn") or state.get("execution_arn")
    log.reset(job_id=job["id"], execution_arn=execution_arn)
    config = load()
    action = config.action(job["action"])
    if action is None:
        raise InvalidJobConfiguration(f"the action type {job['action']} is no longer served by this module")
    grant = state.get("grant")
    build: BuildSpec = state["build"] if grant and state.get("build") else buildspec.validated(config, job, context)
    matches = pools.job_matches_pool(action, job.get("configuration") or {})
    kind = action.strategy if matches else "ephemeral"
    job_config = pools.build_config(config, action, build)

    member: Member | None
    if grant:
        build = shortened(build, int(grant.get("waited_seconds", 0)))
        member = granted(action, job["id"], str(grant["member_id"]))
        if member is not None and build["command_timeout_seconds"] <= 0:
            queue.undo_grant(member, job["id"])
            raise CapacityTimeout(queue.capacity_timeout_message(action, int(grant.get("waited_seconds", 0))))
        if member is not None:
            member = registry.picked_up(member, job["id"])
    else:
        member = None
    if member is None:
        current = registry.members(action.key)
        held = [m for m in current if m.lease_job == job["id"]]  # a retried invocation: the job's member already
        member = held[0] if held else registry.take(action, job["id"], execution_arn, job_config, kind, current)
    if member is None:
        log.info("no capacity: the job queues", cap=action.cap)
        return {"job": job, "build": build, "instance": None, "queued": True}
    instance = materialise(config, action, job, build, member)
    output: dict[str, Any] = {"job": job, "build": build, "instance": instance, "queued": False}
    if grant:
        output["grant"] = grant
    return output


def granted(action: ActionType, job_id: str, member_id: str) -> Member | None:
    """The member granted to the job while it was queued; None if it is no longer the job's (the grant was undone),
    so that the job takes capacity anew."""
    member = registry.member(action.key, member_id)
    if member is None or member.lease_job != job_id:
        log.warning("granted member is no longer the job's", member_id=member_id)
        return None
    return member


def shortened(build: BuildSpec, waited_seconds: int) -> BuildSpec:
    """The build spec with the wait for capacity taken off its timeouts (the wait counts against the job's time)."""
    task_timeout = build["task_timeout_seconds"] - waited_seconds
    command_timeout = min(build["command_timeout_seconds"], task_timeout - buildspec.ARTIFACT_TRANSFER_SECONDS)
    return {**build, "task_timeout_seconds": task_timeout, "command_timeout_seconds": command_timeout}


def materialise(config: Config, action: ActionType, job: Job, build: BuildSpec, member: Member) -> Instance:
    """Make the member's instance available to the job: launch it (a new slot), start it (a stopped member), check
    it (a warm member: Online in Systems Manager), or hand over what a retried invocation launched. A leased member
    whose instance cannot serve (no capacity to start it, gone, not Online) gets a fresh instance instead."""
    if not member.instance_id:
        return _launch(config, action, job, build, member)
    if member.state != registry.LEASED:  # a retried invocation: the member's instance was launched by the first
        return _described(_recorded(member), member, "launch")
    if member.kind == "stopped":
        try:
            return _described(launcher.start(member), member, "start")
        except CannotStart as exc:
            return _replaced(config, action, job, build, member, f"StartInstances failed: {exc}")
    agent = registration.agent_information(member.instance_id)
    if agent is None or agent.get("PingStatus") != "Online":
        status = agent.get("PingStatus", "no status") if agent else "not registered"
        return _replaced(
            config, action, job, build, member, f"its instance is not Online in Systems Manager ({status})"
        )
    instance: Instance = {
        **_recorded(member),
        "launched_epoch": round(time.time(), 3),  # the registration window runs from now
        "online_checked": True,
        "platform_type": str(agent.get("PlatformType", "")),
        "agent_version": str(agent.get("AgentVersion", "")),
    }
    return _described(instance, member, "ready")


def _recorded(member: Member) -> Instance:
    """The member's instance as its record has it."""
    return {
        "instance_id": member.instance_id or "",
        "subnet_id": member.subnet_id or "",
        "launched_at": member.launched_at or "",
        "launched_epoch": float(member.launched_epoch),
    }


def _replaced(config: Config, action: ActionType, job: Job, build: BuildSpec, member: Member, why: str) -> Instance:
    """The leased member's instance cannot serve the job (terminated or stopped behind the pool's back, its agent
    lost, no capacity to start it): it is terminated if it still exists, and a fresh instance is launched into the
    same member (the job keeps its slot; the pool gets a healthy member back after the build)."""
    log.warning(
        "the member's instance cannot serve the job: launching a fresh one into the member",
        member_id=member.id,
        instance_id=member.instance_id,
        reason=why,
    )
    instances.terminate_if_present([member.instance_id or ""])
    return _launch(config, action, job, build, member)


def _launch(config: Config, action: ActionType, job: Job, build: BuildSpec, member: Member) -> Instance:
    instance = launcher.launch(config, job, build, member, member.pooled, action)
    registry.launched(member, instance)
    return _described(instance, member, "launch")


def _described(instance: Instance, member: Member, boot: str) -> Instance:
    described: Instance = {**instance, "member_id": member.id, "pool": member.pool, "kind": member.kind, "boot": boot}
    log.info("instance acquired", instance_id=instance["instance_id"], member_id=member.id, boot=boot)
    return described
