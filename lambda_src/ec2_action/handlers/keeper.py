"""keeper (schedule rate(1 minute), and a nudge from release): keeps every action's queue moving and every pool at
its minimum (DESIGN.md, "Instance pools").

Per action, one pass: fail the queued jobs past their deadline, serve the queue while capacity exists, answer again
the grants nobody picked up. Then, for a warm or stopped pool, from one Query of the registry, one DescribeInstances
(by the members' instance ids) and one DescribeInstanceInformation (the pool's instances):

* promote: a keeper-launched member (no lease) that is Online becomes `ready` (warm) or is stopped (stopped pool:
  `stopping`, then `ready` once EC2 says stopped);
* retire (terminate, remove the record): a ready member that is not healthy (terminated or stopped behind the pool's
  back, Systems Manager lost it), rotated (the pool's configuration changed), recycled (age, builds), idle above the
  desired minimum for longer than max_idle_minutes; a launch that never came Online; a retirement left half done;
* launch members up to the desired minimum (the schedule's), never above the cap, and only when no job is queued
  (queued jobs come first).

A member leased to a job is never touched here: its job's release, or the reaper when the job's execution ended,
decides what happens to it. Every change is a conditional write on the state read, so a job that leases a member
while the keeper judges it wins. Passes over one action never overlap (the schedule's and release's nudge could run at
once, and both launch towards the minimum): each takes the action's lock item in the registry (`id="#keeper"`, until
its invocation's timeout, so that a pass that dies holds it no longer) and releases it at its end; a pass that finds
it taken skips the action (no reserved concurrency: new accounts cannot reserve any). A failure on one action is
logged and does not stop the others. Each action's figures go out as one CloudWatch Embedded Metric Format line.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, buildspec, drain, launcher, log, metrics, pools, queue, registry, tags
from ..config import ActionType, Config, PoolSettings, load
from ..errors import InstanceLaunchFailed, InvalidJobConfiguration, LaunchThrottled, NoCapacity
from ..payloads import BuildSpec
from ..registry import Member

# DescribeInstances takes at most this many values in one filter.
IDS_PER_DESCRIBE = 200
# A slot the keeper reserved and never launched (the invocation died in between) is given back after this long.
STALE_RESERVATION_SECONDS = 300
# EC2's API is eventually consistent: an instance launched this long ago may still be missing from DescribeInstances.
UNSEEN_LAUNCH_SECONDS = 120
# Members (not leased) that become ready without a launch: a slot the keeper reserved, a launch, a stop under way.
ON_THEIR_WAY = frozenset({registry.RESERVED, registry.LAUNCHING, registry.STOPPING})
# EC2 states of an instance that is gone or going.
GONE_STATES = frozenset({"shutting-down", "terminated"})
# How long a pass may run when it is not invoked by Lambda (no context): the function's timeout.
DEFAULT_INVOCATION_SECONDS = 300.0


def now() -> float:
    """The pass's time (one reading per pass: schedule windows, idle times, ages and deadlines are compared with it)."""
    return time.time()


@dataclass
class ActionPass:
    """What one pass did for one action: job ids for the queue, member ids for the pool."""

    expired: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)  # now ready
    stopping: list[str] = field(default_factory=list)  # stopped after their first boot (stopped pools)
    retired: dict[str, str] = field(default_factory=dict)  # member id -> why
    removed: list[str] = field(default_factory=list)  # records without an instance given back (stale reservations)
    launched: list[str] = field(default_factory=list)
    desired_min: int = 0


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """One pass over every action, or only over the action a nudge from release names ({"action": <action key>})."""
    log.start(context)
    config = load()
    if drain.requested(event):  # terraform destroy (keeper_invocation.tf): end every instance of the stack
        return drain.drain(config, context)
    if drain.applied(event):  # terraform apply: capacity a destroy blocked before it failed is given back
        drain.lift(config)
    at = now()
    holder = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
    until = at + remaining_seconds(context)
    wanted = (event or {}).get("action")
    summary: dict[str, Any] = {"actions": {}, "failed": {}, "skipped": []}
    for key, action in config.actions_by_key().items():
        if wanted and key != wanted:
            continue
        log.reset(action=key)
        try:
            if not registry.lock_keeper(key, holder, at, until):
                log.info("another keeper pass is keeping the action: skipped")
                summary["skipped"].append(key)
                continue
            try:
                summary["actions"][key] = asdict(keep(config, action, at))
            finally:
                registry.unlock_keeper(key, holder)
        except Exception as exc:  # one action must not stop the others; the next pass tries again
            log.error("cannot keep the action", error=repr(exc))
            summary["failed"][key] = repr(exc)
    log.reset()
    return summary


def remaining_seconds(context: Any) -> float:
    """How long this invocation may still run (until the function's timeout): how long its keeper locks last."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else DEFAULT_INVOCATION_SECONDS


def keep(config: Config, action: ActionType, at: float) -> ActionPass:
    """One pass for one action: the queue first, then the pool; then its figures (log line and metrics)."""
    done = ActionPass()
    done.expired = queue.expire(config, action, at)
    done.granted = queue.serve(config, action, at)
    done.resent = queue.resend_grants(config, action, at)
    if action.pool is not None:
        _tend(config, action, action.pool, at, done)
        if done.promoted or done.retired or done.removed:  # capacity may have freed for a queued job
            done.granted += queue.serve(config, action, at)
    _report(action, at, done)
    return done


# --- the pool -------------------------------------------------------------------------------------------------------


def _tend(config: Config, action: ActionType, settings: PoolSettings, at: float, done: ActionPass) -> None:
    members = registry.members(action.key)
    described = describe_instances(m.instance_id for m in members if m.instance_id)
    needs_ping = any(
        not m.lease_job and (m.state == registry.LAUNCHING or (m.state == registry.READY and m.kind == "warm"))
        for m in members
    )
    pings = ping_statuses(config, action.key) if needs_ping else {}
    build, current = _pool_configuration(config, action)
    done.desired_min = pools.desired_min(settings, at)

    ready: list[Member] = []  # healthy ready members, those promoted by this pass included
    held = 0  # members that will be ready without a launch: reserved, launching or stopping for the pool
    for member in members:
        if member.lease_job:
            continue  # a job's: its release (or the reaper, once the job's execution ended) decides
        instance = described.get(member.instance_id or "")
        state: str | None = instance["State"]["Name"] if instance else None
        ping = pings.get(member.instance_id or "")
        if member.state == registry.RETIRING:
            _retire(member, member.retire_reason or "retirement completed", done, state)
            continue
        outcome: Member | str
        if member.state == registry.RESERVED:
            outcome = _tend_reserved(member, at, done)
        elif member.state == registry.LAUNCHING:
            outcome = _tend_launching(config, settings, member, state, ping, at, done)
        elif member.state == registry.STOPPING:
            outcome = _tend_stopping(settings, member, state, at, done)
        elif member.state == registry.READY:
            reason = unhealthy(member, state, ping) or pools.retire_reason(
                settings, member, at, current or member.config
            )
            if reason:
                _retire(member, reason, done, state)  # or leased meanwhile: either way not ready now
            outcome = GONE_OUTCOME if reason else member
        else:
            continue
        if isinstance(outcome, Member):
            ready.append(outcome)
        elif outcome == HELD:
            held += 1

    # Idle scale-down: the most recently idle members stay (their caches are the warmest).
    ready.sort(key=lambda m: m.idle_since or 0.0, reverse=True)
    keep_count = max(done.desired_min - held, 0)
    for member in ready[keep_count:]:
        idle_seconds = at - (member.idle_since or member.state_changed_at or at)
        if idle_seconds >= settings.max_idle_minutes * 60:
            reason = f"idle {idle_seconds / 60:.0f} minutes above the pool's minimum of {done.desired_min}"
            _retire(member, reason, done)
    remaining = sum(1 for m in ready if m.id not in done.retired)

    missing = done.desired_min - remaining - held
    if missing > 0 and build is not None and current is not None:
        _launch(config, action, build, current, missing, done)


# What judging a member that is not ready gives: the member once ready, HELD while it is on its way to ready (it
# counts towards the minimum), GONE_OUTCOME when it was retired or given back.
HELD = "held"
GONE_OUTCOME = "gone"


def _pool_configuration(config: Config, action: ActionType) -> tuple[BuildSpec | None, str | None]:
    """(the build spec a keeper-launched member gets, its configuration hash), or (None, None) when the action's
    defaults cannot be launched now (e.g. its AMI was deregistered): the pool then launches nothing, and rotates
    nothing, until they can."""
    try:
        build = buildspec.pool_build(config, action)
    except InvalidJobConfiguration as exc:
        log.error("the pool's configuration cannot be launched: no member is launched", reason=str(exc))
        return None, None
    return build, pools.build_config(config, action, build)


def _tend_reserved(member: Member, at: float, done: ActionPass) -> str:
    """A slot the keeper reserved for the pool: being launched by a pass (it counts), or left behind by one that
    died (given back)."""
    if at - (member.state_changed_at or at) < STALE_RESERVATION_SECONDS:
        return HELD
    if registry.retire(member, "reserved but never launched"):
        done.removed.append(member.id)
    return GONE_OUTCOME


def _tend_launching(
    config: Config,
    settings: PoolSettings,
    member: Member,
    state: str | None,
    ping: str | None,
    at: float,
    done: ActionPass,
) -> Member | str:
    """A member the keeper launched: ready once Online (a stopped pool's is stopped first); retired when its
    instance is gone or never came Online within the registration window."""
    if state is None and at - (member.launched_epoch or at) < UNSEEN_LAUNCH_SECONDS:
        return HELD  # launched moments ago: DescribeInstances may not show it yet
    if state is None or state in GONE_STATES:
        _retire(member, f"its instance is {state or 'gone'} before it was ready", done, state)
        return GONE_OUTCOME
    if ping == "Online" and state == "running":
        if member.kind == "stopped":
            stop_instance(member.instance_id or "", settings.hibernate)
            if registry.mark(member, registry.STOPPING) is not None:
                done.stopping.append(member.id)
            return HELD
        promoted = registry.mark(member, registry.READY, idle_since=at)
        if promoted is None:
            return HELD
        done.promoted.append(member.id)
        return promoted
    waited = at - (member.launched_epoch or at)
    if waited > config.ssm_registration_timeout_seconds:
        _retire(member, f"not Online in Systems Manager {waited / 60:.0f} minutes after its launch", done)
        return GONE_OUTCOME
    return HELD


def _tend_stopping(
    settings: PoolSettings,
    member: Member,
    state: str | None,
    at: float,
    done: ActionPass,
) -> Member | str:
    """A stopped pool's member on its way to `ready`: ready once EC2 says stopped; stopped again if it runs (a stop
    that was lost); retired when its instance is gone."""
    if state is None or state in GONE_STATES:
        _retire(member, f"its instance is {state or 'gone'} while it was being stopped", done, state)
        return GONE_OUTCOME
    if state == "stopped":
        promoted = registry.mark(member, registry.READY, idle_since=at)
        if promoted is None:
            return HELD
        done.promoted.append(member.id)
        return promoted
    if state == "running":
        stop_instance(member.instance_id or "", settings.hibernate)
    return HELD


def unhealthy(member: Member, state: str | None, ping: str | None) -> str | None:
    """Why a ready member cannot serve a job, or None when it can: a warm member is running and Online in Systems
    Manager, a stopped pool's member is stopped."""
    if state is None or state in GONE_STATES:
        return f"its instance is {state or 'gone'} (terminated behind the pool's back)"
    if member.kind == "stopped":
        return None if state == "stopped" else f"its instance is {state}, not stopped"
    if state != "running":
        return f"its instance is {state}, not running"
    if ping != "Online":
        return f"Systems Manager reports it {ping or 'not registered'}"
    return None


def _retire(member: Member, reason: str, done: ActionPass, state: str | None = "") -> bool:
    """Retire the member: marked retiring if still as read, its instance terminated, its record removed. `state` is
    its instance's EC2 state as described: one already terminated, or unknown to EC2, is not terminated again. False
    when the member changed meanwhile (a job leased it): it is left alone."""
    if state in ("terminated", None):
        retiring = (
            member
            if member.state == registry.RETIRING
            else registry.mark(member, registry.RETIRING, retire_reason=reason[:256])
        )
        retired = retiring is not None and registry.remove(retiring)
    else:
        retired = registry.retire(member, reason[:256])
    if not retired:
        log.info("member changed while being judged; left alone", member_id=member.id)
        return False
    log.warning("member retired", member_id=member.id, instance_id=member.instance_id, reason=reason)
    done.retired[member.id] = reason
    return True


def _launch(config: Config, action: ActionType, build: BuildSpec, current: str, count: int, done: ActionPass) -> None:
    """Launch up to `count` members for the pool. Each takes a slot below the cap, and only while no job is queued;
    a launch refused (no capacity, throttled, or failed) gives its slot back at once and ends the growth for this
    pass: the next pass tries again, instead of the slot being held as if launching until it goes stale."""
    for _ in range(count):
        member = registry.reserve(action, current, action.strategy, fair=True)
        if member is None:
            log.info("the pool cannot grow now: its cap is reached or jobs are queued", cap=action.cap)
            return
        try:
            purchase = launcher.purchase_for(action, interruptions=0)
            instance = launcher.launch(config, None, build, member, True, action, purchase)
        except (NoCapacity, InstanceLaunchFailed, LaunchThrottled) as exc:
            log.warning("cannot launch a pool member", member_id=member.id, error=str(exc))
            registry.remove(member)
            return
        registry.launched(member, instance)
        done.launched.append(member.id)


# --- EC2 and Systems Manager ----------------------------------------------------------------------------------------


def describe_instances(instance_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The instances with these ids, by id, as DescribeInstances returns them (filtered by id, so that an id EC2 no
    longer knows is simply absent instead of failing the call)."""
    ids = sorted(set(instance_ids))
    found: dict[str, dict[str, Any]] = {}
    paginator = aws.client("ec2").get_paginator("describe_instances")
    for start in range(0, len(ids), IDS_PER_DESCRIBE):
        filters = [{"Name": "instance-id", "Values": ids[start : start + IDS_PER_DESCRIBE]}]
        for page in paginator.paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    found[instance["InstanceId"]] = instance
    return found


def ping_statuses(config: Config, pool: str) -> dict[str, str]:
    """Systems Manager's PingStatus of the pool's instances, by instance id (an instance not registered is absent)."""
    filters = [
        {"Key": f"tag:{tags.STACK}", "Values": [config.stack]},
        {"Key": f"tag:{tags.POOL}", "Values": [pool]},
    ]
    found: dict[str, str] = {}
    paginator = aws.client("ssm").get_paginator("describe_instance_information")
    for page in paginator.paginate(Filters=filters):
        for info in page["InstanceInformationList"]:
            found[info["InstanceId"]] = info.get("PingStatus", "")
    return found


def stop_instance(instance_id: str, hibernate: bool) -> None:
    """Stop (or hibernate) a member's instance. An instance not yet ready to hibernate is stopped instead: EC2 refuses
    hibernation in its first minutes."""
    ec2 = aws.client("ec2")
    if hibernate:
        try:
            ec2.stop_instances(InstanceIds=[instance_id], Hibernate=True)
            return
        except ClientError as exc:
            if aws.error_code(exc) not in ("UnsupportedHibernationConfiguration", "UnsupportedOperation"):
                raise
            log.warning("cannot hibernate the instance yet; stopping it", instance_id=instance_id)
    ec2.stop_instances(InstanceIds=[instance_id])


# --- figures --------------------------------------------------------------------------------------------------------


def _report(action: ActionType, at: float, done: ActionPass) -> None:
    """The action's queue and pool after the pass: one log line and one EMF line (CloudWatch extracts the metrics).
    An ephemeral action has no minimum: nothing is missing."""
    waiting = queue.entries(action.key)
    members = registry.members(action.key)
    counts = {state: sum(1 for m in members if m.state == state) for state in registry.STATES}
    oldest = max((at - entry.enqueued_at for entry in waiting), default=0.0)
    ready = sum(1 for m in members if m.state == registry.READY and not m.lease_job)
    on_their_way = sum(1 for m in members if m.state in ON_THEIR_WAY and not m.lease_job)
    figures = {
        "QueueDepth": len(waiting),
        "OldestQueuedSeconds": round(max(oldest, 0.0), 3),
        # Idle and able to serve a job at once; held by a job (reserved, launching or leased for it).
        "ReadyInstances": ready,
        "LeasedInstances": sum(1 for m in members if m.lease_job),
        # What the pool lacks of its desired minimum once the members on their way are ready: above 0 for long, the
        # pool cannot reach its minimum (no capacity, its cap, a launch failing).
        "MissingReadyInstances": max(done.desired_min - ready - on_their_way, 0),
    }
    log.info(
        "keeper pass finished",
        queue_depth=figures["QueueDepth"],
        oldest_wait_seconds=figures["OldestQueuedSeconds"],
        desired_min=done.desired_min,
        ready=figures["ReadyInstances"],
        leased=figures["LeasedInstances"],
        missing=figures["MissingReadyInstances"],
        launching=counts[registry.LAUNCHING],
        members={state: count for state, count in counts.items() if count},
        **{key: value for key, value in asdict(done).items() if value and key != "desired_min"},
    )
    metrics.emit(figures, Action=action.key)
