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

A spot instance interrupted during WaitForSsmOnline or RunBuildCommand brings the execution back here with
`interrupted` (the caught SpotInterrupted) and the interrupted `instance`: the job keeps its member (its slot) and gets
a fresh instance in it, on-demand once the action's interruption budget is spent; the build runs again from the
start. `attempt` counts the interruptions, with a bound (never reached while on-demand follows the budget).

Input: `{"state": <the state machine's state>, "execution_arn"}` (or the older `{"job", "execution_arn"}`).
Output: `{"job", "build", "instance" | null, "queued", "grant"?, "attempt"?}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .. import buildspec, instances, launcher, log, metrics, pools, queue, registration, registry
from ..config import ActionType, Config, load
from ..errors import CapacityTimeout, InstanceLaunchFailed, InvalidJobConfiguration, interruption_of
from ..launcher import CannotStart, NoCapacityToStart
from ..payloads import BuildSpec, Instance, Job
from ..registry import Member

# Kept here for the module's variable descriptions (tests/test_shared_constants.py).
SHUTDOWN_GRACE_MINUTES = launcher.SHUTDOWN_GRACE_MINUTES
subnet_rotation = launcher.subnet_rotation
# Interruptions a build may have beyond its action's budget before it fails: after the budget it runs on-demand, which
# is never interrupted, so only a spot instance reported interrupted by mistake reaches the bound.
RESTARTS_BEYOND_BUDGET = 2


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state: dict[str, Any] = event.get("state") or event
    job: Job = state["job"]
    execution_arn = event.get("execution_arn") or state.get("execution_arn")
    log.start(context, job_id=job["id"], execution_arn=execution_arn)
    config = load()
    action = config.action(job["action"])
    if action is None:
        raise InvalidJobConfiguration(f"the action type {job['action']} is no longer served by this module")
    if state.get("interrupted"):
        return restarted(config, action, job, state)
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
    attempt = state.get("attempt")
    purchase = launcher.purchase_for(action, int(attempt["interruptions"]) if attempt else 0)
    instance = timed(lambda: materialise(config, action, job, build, member, purchase))
    output: dict[str, Any] = {"job": job, "build": build, "instance": instance, "queued": False}
    if grant:
        output["grant"] = grant
    if attempt:
        output["attempt"] = attempt
    return output


def restarted(config: Config, action: ActionType, job: Job, state: dict[str, Any]) -> dict[str, Any]:
    """The job's spot instance was interrupted: a fresh instance in the member the job holds (no queue: it keeps its
    slot), bought as purchase_for says after this interruption; the build spec as it was (validated, the wait for
    capacity already taken off)."""
    interrupted: dict[str, Any] = state.get("instance") or {}
    attempt = counted(state.get("attempt"), interrupted, state)
    interruptions = int(attempt["interruptions"])
    bound = action.interruptions_before_on_demand + RESTARTS_BEYOND_BUDGET
    log.warning("the build's instance was interrupted", interruptions=interruptions, **attempt["history"][-1])
    if interruptions > bound:
        raise InstanceLaunchFailed(
            f"the build's instance was interrupted {interruptions} times (at most {bound} restarts): "
            f"the build never ran to its end"
        )
    build: BuildSpec = state["build"]
    member = held_member(action, job["id"], str(interrupted.get("member_id") or ""))
    if member is None:
        raise InstanceLaunchFailed(
            f"the build's instance {interrupted.get('instance_id')} was interrupted and the job no longer holds "
            f"its slot of {action.key}: it cannot be restarted"
        )
    purchase = launcher.purchase_for(action, interruptions)
    interrupted_id = str(interrupted.get("instance_id") or "")
    if member.instance_id and member.instance_id != interrupted_id:  # a retried invocation launched it already
        instance = _described(_recorded(member), member, "launch")
    else:
        why = f"its instance {interrupted_id} was interrupted ({interruptions} so far): restarting the build"
        instance = timed(lambda: _replaced(config, action, job, build, member, why, purchase))
        metrics.emit({"SpotRestarts": 1}, Action=action.key)  # once: a retried invocation takes the branch above
    return {"job": job, "build": build, "instance": instance, "queued": False, "attempt": attempt}


def timed(acquiring: Callable[[], Instance]) -> Instance:
    """The instance acquiring made available, with how long that took (`acquire_seconds`: the launch, start or lease
    check, the report's AcquireSeconds)."""
    began = time.monotonic()
    instance = acquiring()
    return {**instance, "acquire_seconds": round(time.monotonic() - began, 3)}


def counted(attempt: dict[str, Any] | None, interrupted: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The job's attempts with this interruption added: how many, and which instance, where and when."""
    before = attempt or {"interruptions": 0, "history": []}
    cause = interruption_of(state["interrupted"])
    entry = {
        "instance_id": str(interrupted.get("instance_id") or cause.get("instance_id") or ""),
        "instance_type": str(interrupted.get("instance_type") or state.get("build", {}).get("instance_type") or ""),
        "lifecycle": str(interrupted.get("lifecycle") or "spot"),
        "step": interrupted_step(cause, state),
        "at": cause.get("at") or datetime.now(UTC).isoformat(),
    }
    return {"interruptions": int(before["interruptions"]) + 1, "history": [*before["history"], entry]}


def interrupted_step(cause: dict[str, str], state: dict[str, Any]) -> str:
    """The step the interruption stopped: as its cause names it, else RunBuildCommand once WaitForSsmOnline found the
    instance Online in this attempt (its `ssm` result: every acquire output starts a fresh state), else
    WaitForSsmOnline."""
    if cause.get("step") in ("WaitForSsmOnline", "RunBuildCommand"):
        return cause["step"]
    return "RunBuildCommand" if (state.get("ssm") or {}).get("online") is True else "WaitForSsmOnline"


def held_member(action: ActionType, job_id: str, member_id: str) -> Member | None:
    """The member the job holds (leased to it): the one its instance was in when there are several."""
    held = [m for m in registry.members(action.key) if m.lease_job == job_id]
    return next((m for m in held if m.id == member_id), held[0] if held else None)


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


def materialise(
    config: Config, action: ActionType, job: Job, build: BuildSpec, member: Member, purchase: str = "on-demand"
) -> Instance:
    """Make the member's instance available to the job: launch it (a new slot), start it (a stopped member), check
    it (a warm member: Online in Systems Manager), or hand over what a retried invocation launched. A leased member
    whose instance cannot serve (no capacity to start it, gone, not Online) gets a fresh instance instead."""
    if not member.instance_id:
        return _launch(config, action, job, build, member, purchase)
    if member.state != registry.LEASED:  # a retried invocation: the member's instance was launched by the first
        return _described(_recorded(member), member, "launch")
    if member.kind == "stopped":
        try:
            return _described(launcher.start(member), member, "start")
        except CannotStart as exc:
            if isinstance(exc, NoCapacityToStart):
                refused = launcher.PoolTried(member.instance_type or "", member.subnet_id or "", "on-demand", exc.code)
                launcher.count_capacity_errors(config, action, [refused], job["id"])
            return _replaced(config, action, job, build, member, f"StartInstances failed: {exc}", purchase)
    agent = registration.agent_information(member.instance_id)
    if agent is None or agent.get("PingStatus") != "Online":
        status = agent.get("PingStatus", "no status") if agent else "not registered"
        why = f"its instance is not Online in Systems Manager ({status})"
        return _replaced(config, action, job, build, member, why, purchase)
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
    instance: Instance = {
        "instance_id": member.instance_id or "",
        "subnet_id": member.subnet_id or "",
        "launched_at": member.launched_at or "",
        "launched_epoch": float(member.launched_epoch),
    }
    if member.instance_type:
        instance["instance_type"] = member.instance_type
    if member.lifecycle in ("spot", "on-demand"):
        instance["lifecycle"] = "spot" if member.lifecycle == "spot" else "on-demand"
    return instance


def _replaced(
    config: Config, action: ActionType, job: Job, build: BuildSpec, member: Member, why: str, purchase: str
) -> Instance:
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
    return _launch(config, action, job, build, member, purchase)


def _launch(config: Config, action: ActionType, job: Job, build: BuildSpec, member: Member, purchase: str) -> Instance:
    instance = launcher.launch(config, job, build, member, member.pooled, action, purchase)
    registry.launched(member, instance)
    return _described(instance, member, "launch")


def _described(instance: Instance, member: Member, boot: str) -> Instance:
    described: Instance = {**instance, "member_id": member.id, "pool": member.pool, "kind": member.kind, "boot": boot}
    log.info("instance acquired", instance_id=instance["instance_id"], member_id=member.id, boot=boot)
    return described
