"""The drain (terraform destroy): no instance of the stack outlives the module (DESIGN.md, "Instance pools").

Pool members and the ephemeral instances of running builds are launched by Lambda, not by Terraform: once the
functions, the registry and the schedules are destroyed, nothing would ever end them. So the module invokes the keeper
with `aws_lambda_invocation` (lifecycle_scope CRUD, modules/orchestrator/keeper_invocation.tf); Terraform destroys that
invocation first (it depends on the keeper, its role policy, the registry table and its log group) and the provider
then invokes the keeper once more with `{"tf": {"action": "delete", ...}}`. The drain:

1. blocks every action's capacity: its counter's `instances` is set far above any cap, so that no acquire, queue grant
   or keeper pass takes a slot (and launches) between the drain and the table's deletion;
2. fails every queued job's task token (StackDestroyed) and deletes its queue entry: its execution stops waiting;
3. terminates every instance tagged with the stack (pool members, ephemeral builders, any state but terminated; those
   tagged ec2-action:keep too: nothing would end them later), in batches, an id EC2 no longer knows being fine; then
   waits, while the invocation has time, until EC2 reports them terminated (so that Terraform deletes the subnets and
   security groups without waiting on their network interfaces), terminating any launch that was in flight when the
   drain began (a slot reserved moments before the block) once it lands;
4. deletes every member record.

An apply after a destroy that failed half-way (the invocation is created again) lifts the block: see `lift`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from . import aws, errors, instances, log, queue, registry
from .config import Config
from .registry import COUNTER_ID, Member

# The key under which aws_lambda_invocation (lifecycle_scope CRUD) adds its lifecycle to the input (its terraform_key,
# "tf" unless set), and the actions it reports there.
TERRAFORM_KEY = "tf"
DESTROY = "delete"
APPLY = ("create", "update")

STACK_DESTROYED = errors.StackDestroyed.__name__
# The counter's `instances` while the stack is being destroyed: above any cap (at most 500), so every conditional
# write that takes a slot fails; a retirement's decrement leaves it above too.
BLOCKED_INSTANCES = 1_000_000_000
# TerminateInstances takes many ids per request; AWS recommends small batches.
TERMINATE_BATCH = 100
# A slot reserved this recently may have its RunInstances in flight: the drain waits for its instance.
IN_FLIGHT_SECONDS = 60
# Between two looks at the stack's instances while they shut down.
POLL_SECONDS = 5.0
# Time kept, at the end of the invocation, for deleting the records and answering.
MARGIN_SECONDS = 30.0
# EC2 states of an instance that still has to end (terminated is the end; shutting-down is on its way).
TO_TERMINATE = ("pending", "running", "stopping", "stopped")


def now() -> float:
    """The time (tests move it)."""
    return time.time()


def lifecycle(event: Any) -> str | None:
    """The Terraform lifecycle action an invocation comes from ("create", "update", "delete"), None for a schedule or
    a nudge."""
    marker = event.get(TERRAFORM_KEY) if isinstance(event, dict) else None
    action = marker.get("action") if isinstance(marker, dict) else None
    return str(action) if action else None


def requested(event: Any) -> bool:
    """Whether the invocation is terraform destroy's (the module's keeper invocation being deleted)."""
    return lifecycle(event) == DESTROY


def applied(event: Any) -> bool:
    """Whether the invocation is terraform apply's (the keeper invocation created or its input changed)."""
    return lifecycle(event) in APPLY


@dataclass
class Drained:
    """What the drain did: instance ids, job ids, action keys."""

    blocked: list[str] = field(default_factory=list)  # action keys whose capacity is blocked
    failed_jobs: list[str] = field(default_factory=list)  # queued jobs whose wait was failed
    terminated: list[str] = field(default_factory=list)
    shutting_down: list[str] = field(default_factory=list)  # not yet terminated when the drain answered
    records_deleted: int = 0
    queue_entries_deleted: int = 0


def drain(config: Config, context: Any) -> dict[str, Any]:
    """End everything the stack launched (see the module's docstring); a summary of what was done. An error that
    leaves instances behind is raised (the destroy then fails and can be run again); a registry already gone is
    fine: the instances are found by their stack tag."""
    started = now()
    deadline = started + max(_remaining_seconds(context) - MARGIN_SECONDS, 0.0)
    done = Drained()
    log.warning("terraform destroy: draining the stack", stack=config.stack)

    members: list[Member] = []
    failure: Exception | None = None  # raised once the instances are ended: they come first
    try:
        _close_registry(config, started, done, members)
    except ClientError as exc:
        if aws.error_code(exc) != "ResourceNotFoundException":
            failure = exc
        log.warning("cannot close the registry: the instances are ended all the same", error=str(exc))

    in_flight = [m for m in members if m.state == registry.RESERVED and _age(m, started) < IN_FLIGHT_SECONDS]
    known = {m.instance_id for m in members if m.instance_id}
    ended, left = end_instances(config.stack, known, in_flight, deadline)
    done.terminated, done.shutting_down = sorted(ended), sorted(left)

    for member in members:
        registry.table().delete_item(Key={"pool": member.pool, "id": member.id})
        done.records_deleted += 1

    summary = asdict(done)
    log.warning("stack drained", seconds=round(now() - started, 3), **summary)
    if failure is not None:
        raise failure
    return summary


def _close_registry(config: Config, at: float, done: Drained, members: list[Member]) -> None:
    """Block every action's capacity, fail and delete its queue entries; its member records are added to `members`
    (read once blocked: no record is created after)."""
    for key in config.actions_by_key():
        block(key, at)
        done.blocked.append(key)
        members += registry.members(key)
        for entry in queue.entries(key):
            if _fail_entry(config, entry):
                done.failed_jobs.append(entry.job_id)
            done.queue_entries_deleted += 1


def _remaining_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else 300.0


def _age(member: Member, at: float) -> float:
    return at - float(member.state_changed_at or 0.0)


def block(action_key: str, at: float) -> None:
    """Block the action's capacity: no conditional write takes a slot while the counter says BLOCKED_INSTANCES."""
    registry.table().update_item(
        Key={"pool": action_key, "id": COUNTER_ID},
        UpdateExpression="SET instances = :blocked, queued = :zero, drained_at = :now",
        ExpressionAttributeValues={":blocked": BLOCKED_INSTANCES, ":zero": 0, ":now": Decimal(str(round(at, 3)))},
    )


def stack_destroyed_message(config: Config) -> str:
    return (
        f"the module (stack {config.stack}) is being destroyed (terraform destroy): its instances are terminated "
        "and its queue emptied, so this job will get no instance"
    )


def _fail_entry(config: Config, entry: queue.Entry) -> bool:
    """Fail a queued job's wait with StackDestroyed and delete its entry; False when nobody waited on its token any
    more (its execution had ended)."""
    answered = True
    try:
        aws.client("stepfunctions").send_task_failure(
            taskToken=entry.token, error=STACK_DESTROYED, cause=stack_destroyed_message(config)
        )
    except ClientError as exc:
        if aws.error_code(exc) not in queue.TOKEN_GONE:
            raise
        answered = False
    registry.table().delete_item(Key={"pool": entry.pool, "id": entry.id})
    log.info("queued job failed: the stack is destroyed", job_id=entry.job_id, answered=answered)
    return answered


def end_instances(
    stack: str, known_ids: Iterable[str], in_flight: list[Member], deadline: float
) -> tuple[set[str], set[str]]:
    """Terminate the stack's instances (found by tag, and those the records name: a launch of moments ago may not be
    found by tag yet) and wait until EC2 reports them terminated, or the deadline; (ids terminated, ids still shutting
    down at the deadline).

    A reservation in flight (`in_flight`: its RunInstances may be under way) is followed until its record names its
    instance, which is then terminated; it is given up once the reservation is IN_FLIGHT_SECONDS old."""
    ended: set[str] = set()
    wanted = set(known_ids)
    while True:
        found = {i["InstanceId"]: i["State"]["Name"] for i in instances.find(stack)}  # live states only
        wanted |= {iid for iid, state in found.items() if state in TO_TERMINATE}
        in_flight = _still_in_flight(in_flight, wanted)
        if wanted - ended:
            terminate(wanted - ended)
            ended |= wanted
            continue  # look again at once: what was terminated is shutting down now
        if not found and not in_flight:
            return ended, set()
        if now() + POLL_SECONDS > deadline:
            if in_flight:
                log.error("launches still in flight when the drain ran out of time", members=[m.id for m in in_flight])
            log.warning("instances still shutting down when the drain answered", instance_ids=sorted(found))
            return ended, set(found)
        pause(POLL_SECONDS)


def _still_in_flight(in_flight: list[Member], landed: set[str]) -> list[Member]:
    """The reservations still without an instance (young enough to be waited on); the instance ids of those that got
    one are added to `landed`."""
    waiting: list[Member] = []
    at = now()
    for member in in_flight:
        current = registry.member(member.pool, member.id)
        if current is None:
            continue  # its launch failed and gave the slot back
        if current.instance_id:
            landed.add(current.instance_id)
        elif current.state == registry.RESERVED and _age(member, at) < IN_FLIGHT_SECONDS:
            waiting.append(current)
    return waiting


def terminate(instance_ids: Iterable[str]) -> None:
    """Terminate these instances in batches; ids EC2 no longer knows are fine."""
    ids = sorted(instance_ids)
    for start in range(0, len(ids), TERMINATE_BATCH):
        batch = ids[start : start + TERMINATE_BATCH]
        instances.terminate_if_present(batch)
        log.info("instances terminated", instance_ids=batch)


def pause(seconds: float) -> None:
    """Wait between two looks at the stack's instances."""
    time.sleep(seconds)


def lift(config: Config) -> list[str]:
    """An apply after a destroy that failed half-way: give every blocked action its capacity back (its counter
    counts its member records and queue entries again). The action keys lifted."""
    lifted: list[str] = []
    for key in config.actions_by_key():
        try:
            registry.table().update_item(
                Key={"pool": key, "id": COUNTER_ID},
                UpdateExpression="SET instances = :instances, queued = :queued REMOVE drained_at",
                ConditionExpression="attribute_exists(drained_at)",
                ExpressionAttributeValues={
                    ":instances": len(registry.members(key)),
                    ":queued": len(queue.entries(key)),
                },
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            continue
        log.warning("capacity unblocked after a drain: the stack is applied again", action=key)
        lifted.append(key)
    return lifted
