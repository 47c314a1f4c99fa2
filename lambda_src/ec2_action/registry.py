"""The registry table (DESIGN.md, "Instance pools"): one record per instance the stack launches, ephemeral included,
and a counter per action, so that the cap is counted from the table, never from a DescribeInstances scan per job.

Items, in the table `<prefix>-pool` (hash key `pool`, range key `id`):
* the counter, `pool=<action key>, id="#counter"`: `instances` (member records), `queued` (queue entries);
* the keeper's lock, `pool=<action key>, id="#keeper"`: held by one keeper pass over the action at a time;
* a member, `pool=<action key>, id="m-<12 hex>"`: its state, kind, configuration, instance, lease and history.

Every invariant is a conditional write or a transaction: `instances <= cap`; a newcomer takes capacity only when no
job is queued (fairness); a member is leased by one job at a time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from . import aws, instances, log
from .config import ActionType, load
from .jobs import plain

COUNTER_ID = "#counter"
KEEPER_LOCK_ID = "#keeper"
MEMBER_PREFIX = "m-"
# A keeper lock left by a pass that died is deleted by the table's TTL this long after it expired (it no longer
# counts from its lock_until on: the TTL only tidies up).
LOCK_RETENTION_SECONDS = 24 * 3600

# Member states (DESIGN.md, "Instance pools"): a slot taken for a job with no instance yet; RunInstances done (leased
# to a job, or launched by the keeper for the pool); idle (warm: running and Online; stopped: stopped); serving a
# job; being stopped after a build (stopped pools); being terminated.
RESERVED = "reserved"
LAUNCHING = "launching"
READY = "ready"
LEASED = "leased"
STOPPING = "stopping"
RETIRING = "retiring"
STATES = (RESERVED, LAUNCHING, READY, LEASED, STOPPING, RETIRING)


@dataclass(frozen=True)
class Member:
    """A member record. `lease_job` is the job it serves (None: the pool's own, e.g. ready or keeper-launched)."""

    pool: str
    id: str
    state: str
    kind: str  # "ephemeral" | "warm" | "stopped"
    config: str
    instance_id: str | None = None
    subnet_id: str | None = None
    launched_at: str | None = None
    launched_epoch: float = 0.0
    instance_type: str | None = None  # the type EC2 launched (of the build's instance types)
    lifecycle: str | None = None  # "spot" | "on-demand"
    # Launches of this instance generation that EC2 answered without an instance: part of the launch's client token,
    # so that a retry is a new request (CreateFleet answers a token it has seen with its first answer).
    failed_launches: int = 0
    builds: int = 0
    lease_job: str | None = None
    lease_execution: str | None = None
    leased_at: float | None = None
    grant_token: str | None = None  # a grant to a queued job, until its execution picks the member up
    granted_at: float | None = None
    queued_at: float | None = None  # when the granted job was queued (its wait counts against its timeout)
    idle_since: float | None = None
    state_changed_at: float | None = None
    retire_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # attributes this code does not know

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Member:
        values = plain(dict(item))
        known = {f.name for f in fields(cls)} - {"extra"}
        member = cls(**{key: value for key, value in values.items() if key in known})
        member.extra.update({key: value for key, value in values.items() if key not in known})
        return member

    @property
    def pooled(self) -> bool:
        """Whether the instance outlives its build (a warm or stopped pool's member)."""
        return self.kind != "ephemeral"


@dataclass(frozen=True)
class Counter:
    instances: int
    queued: int


def table() -> Any:
    return aws.table(load().pool_table)


def client() -> Any:
    """The table resource's client: it takes and returns plain Python values (TransactWriteItems included)."""
    return table().meta.client


def new_member_id() -> str:
    return f"{MEMBER_PREFIX}{uuid.uuid4().hex[:12]}"


def _now() -> Decimal:
    return Decimal(str(round(time.time(), 3)))


def members(pool: str) -> list[Member]:
    """Every member record of the action `pool` (one Query, strongly consistent)."""
    request: dict[str, Any] = {
        "KeyConditionExpression": "#pool = :pool AND begins_with(#id, :prefix)",
        "ExpressionAttributeNames": {"#pool": "pool", "#id": "id"},
        "ExpressionAttributeValues": {":pool": pool, ":prefix": MEMBER_PREFIX},
        "ConsistentRead": True,
    }
    found: list[Member] = []
    while True:
        page = table().query(**request)
        found.extend(Member.from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def member(pool: str, member_id: str) -> Member | None:
    item = table().get_item(Key={"pool": pool, "id": member_id}, ConsistentRead=True).get("Item")
    return Member.from_item(item) if item else None


def counter(pool: str) -> Counter:
    item = table().get_item(Key={"pool": pool, "id": COUNTER_ID}, ConsistentRead=True).get("Item") or {}
    return Counter(int(item.get("instances", 0)), int(item.get("queued", 0)))


def cancellation_codes(exc: ClientError) -> list[str]:
    """The per-item codes of a TransactionCanceledException ("None" for an item that was fine)."""
    return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]


def transact(items: list[dict[str, Any]]) -> list[str] | None:
    """Run a transaction; None when it succeeded, else the cancellation codes (a condition that did not hold)."""
    try:
        client().transact_write_items(TransactItems=items)
    except ClientError as exc:
        if aws.error_code(exc) != "TransactionCanceledException":
            raise
        codes = cancellation_codes(exc)
        if not any(code == "ConditionalCheckFailed" for code in codes):
            raise  # a conflict with another transaction, throttling...: botocore retried it already
        return codes
    return None


# A newcomer takes capacity only when nobody is queued; a new member only below the cap.
NOBODY_QUEUED = "(attribute_not_exists(queued) OR queued <= :zero)"
BELOW_CAP = "(attribute_not_exists(instances) OR instances < :cap)"


def counter_update(pool: str, cap: int, queued_delta: int = 0, fair: bool = True) -> dict[str, Any]:
    """The counter's part of a transaction creating a member: instances + 1 below the cap (and, for a newcomer, with
    nobody queued); `queued_delta` for a grant to a queued job."""
    expression = "ADD instances :one"
    values: dict[str, Any] = {":one": 1, ":cap": cap}
    if queued_delta:
        expression += ", queued :dq"
        values[":dq"] = queued_delta
    condition = BELOW_CAP
    if fair:
        condition += f" AND {NOBODY_QUEUED}"
        values[":zero"] = 0
    return {
        "Update": {
            "TableName": load().pool_table,
            "Key": {"pool": pool, "id": COUNTER_ID},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
    }


def nobody_queued_check(pool: str) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": load().pool_table,
            "Key": {"pool": pool, "id": COUNTER_ID},
            "ConditionExpression": f"attribute_not_exists(id) OR {NOBODY_QUEUED}",
            "ExpressionAttributeValues": {":zero": 0},
        }
    }


def new_member_item(
    pool: str,
    kind: str,
    config: str,
    job_id: str | None,
    execution_arn: str | None,
    grant_token: str | None = None,
    queued_at: float | None = None,
) -> dict[str, Any]:
    """A reserved member's record: a slot of the cap, for a job (leased) or for the pool (no lease)."""
    now = _now()
    item: dict[str, Any] = {
        "pool": pool,
        "id": new_member_id(),
        "state": RESERVED,
        "kind": kind,
        "config": config,
        "builds": 0,
        "state_changed_at": now,
    }
    if job_id is not None:
        item.update(lease_job=job_id, leased_at=now)
        if execution_arn:
            item["lease_execution"] = execution_arn
    if grant_token is not None:
        item.update(grant_token=grant_token, granted_at=now, queued_at=Decimal(str(round(queued_at or now, 3))))
    return item


def lease_update(
    pool: str,
    member_id: str,
    config: str,
    job_id: str,
    execution_arn: str | None,
    grant_token: str | None = None,
    queued_at: float | None = None,
) -> dict[str, Any]:
    """The update leasing a ready member of this configuration to a job (fails if another job leased it first)."""
    now = _now()
    expression = "SET #state = :leased, lease_job = :job, leased_at = :now, state_changed_at = :now"
    values: dict[str, Any] = {
        ":leased": LEASED,
        ":ready": READY,
        ":config": config,
        ":job": job_id,
        ":now": now,
    }
    if execution_arn:
        expression += ", lease_execution = :execution"
        values[":execution"] = execution_arn
    if grant_token is not None:
        expression += ", grant_token = :token, granted_at = :now, queued_at = :queued"
        values[":token"] = grant_token
        values[":queued"] = Decimal(str(round(queued_at or float(now), 3)))
    expression += " REMOVE idle_since"
    return {
        "Update": {
            "TableName": load().pool_table,
            "Key": {"pool": pool, "id": member_id},
            "UpdateExpression": expression,
            "ConditionExpression": "#state = :ready AND #config = :config AND attribute_not_exists(lease_job)",
            "ExpressionAttributeNames": {"#state": "state", "#config": "config"},
            "ExpressionAttributeValues": values,
        }
    }


def ready_members(pool: str, config: str, current: list[Member] | None = None) -> list[Member]:
    """Ready members of this configuration, the most recently idle first (warm caches stay warm); from `current`
    when the caller has just read the pool's members."""
    found = members(pool) if current is None else current
    ready = [m for m in found if m.state == READY and m.config == config and m.lease_job is None]
    return sorted(ready, key=lambda m: m.idle_since or 0.0, reverse=True)


def take(
    action: ActionType,
    job_id: str,
    execution_arn: str | None,
    config: str,
    kind: str | None = None,
    current: list[Member] | None = None,
) -> Member | None:
    """Capacity for a newcomer job: lease a ready member of its configuration, else reserve a new slot below the cap.
    None when the cap is reached or other jobs are queued (the job then queues behind them).

    `kind` is what a new slot becomes: the action's strategy (the job matches the pool; the default) or "ephemeral"
    (the job's configuration is not the pool's: its instance is terminated after the build, and never leases a
    ready member)."""
    kind = kind or action.strategy
    pool = action.key
    if kind != "ephemeral":
        for candidate in ready_members(pool, config, current):
            codes = transact(
                [lease_update(pool, candidate.id, config, job_id, execution_arn), nobody_queued_check(pool)]
            )
            if codes is None:
                log.info("member leased", member_id=candidate.id, instance_id=candidate.instance_id)
                return member(pool, candidate.id)
            if codes[1] == "ConditionalCheckFailed":
                return None  # others are queued: this job queues behind them
            # Another job leased this member first: try the next one.
    item = new_member_item(pool, kind, config, job_id, execution_arn)
    put = {
        "Put": {
            "TableName": load().pool_table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(id)",
        }
    }
    if transact([put, counter_update(pool, action.cap)]) is not None:
        return None
    log.info("member reserved", member_id=item["id"], kind=kind)
    return Member.from_item(item)


def reserve(
    action: ActionType,
    config: str,
    kind: str,
    job_id: str | None = None,
    execution_arn: str | None = None,
    fair: bool = True,
) -> Member | None:
    """A new slot below the cap (the keeper's way to grow a pool to its minimum: no job, no lease); None at the cap,
    or when jobs are queued and `fair` (queued jobs come first)."""
    item = new_member_item(action.key, kind, config, job_id, execution_arn)
    put = {"Put": {"TableName": load().pool_table, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}}
    if transact([put, counter_update(action.key, action.cap, fair=fair)]) is not None:
        return None
    return Member.from_item(item)


def launched(member: Member, instance: Mapping[str, Any]) -> Member:
    """The launch returned: the member is `launching`, with its instance (acquire's Instance fields); a new instance
    generation starts with no failed launches."""
    described = {key: instance[key] for key in ("instance_type", "lifecycle") if instance.get(key)}
    updated = mark(
        member,
        LAUNCHING,
        instance_id=instance["instance_id"],
        subnet_id=instance["subnet_id"],
        launched_at=instance["launched_at"],
        launched_epoch=Decimal(str(instance["launched_epoch"])),
        failed_launches=0,
        **described,
    )
    if updated is None:
        raise LookupError(f"member {member.id} of {member.pool} changed while its instance launched")
    return updated


def launch_failed(member: Member) -> Member:
    """EC2 answered the member's launch without an instance (no capacity, throttled, refused): the next try is a new
    request with a new client token. The member as it now is (unchanged when its lease changed meanwhile)."""
    condition = "attribute_not_exists(lease_job)" if member.lease_job is None else "lease_job = :lease"
    values: dict[str, Any] = {":one": 1}
    if member.lease_job is not None:
        values[":lease"] = member.lease_job
    updated = _update_member(
        member,
        UpdateExpression="ADD failed_launches :one",
        ConditionExpression=f"attribute_exists(id) AND {condition}",
        ExpressionAttributeValues=values,
    )
    return updated or member


def mark(
    member: Member,
    state: str,
    expected_state: str | None = None,
    remove: tuple[str, ...] = (),
    **attrs: Any,
) -> Member | None:
    """Move a member to `state` and set attributes, if it is still in `expected_state` (default: the state read) with
    the same lease; the new record, or None when it changed meanwhile."""
    now = _now()
    names = {"#state": "state"}
    values: dict[str, Any] = {":state": state, ":now": now, ":expected": expected_state or member.state}
    sets = ["#state = :state", "state_changed_at = :now"]
    for index, (name, value) in enumerate(sorted(attrs.items())):
        names[f"#a{index}"] = name
        values[f":a{index}"] = Decimal(str(value)) if isinstance(value, float) else value
        sets.append(f"#a{index} = :a{index}")
    expression = "SET " + ", ".join(sets)
    if remove:
        removed = []
        for index, name in enumerate(remove):
            names[f"#r{index}"] = name
            removed.append(f"#r{index}")
        expression += " REMOVE " + ", ".join(removed)
    condition = "#state = :expected AND "
    if member.lease_job is None:
        condition += "attribute_not_exists(lease_job)"
    else:
        condition += "lease_job = :lease"
        values[":lease"] = member.lease_job
    return _update_member(
        member,
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def _update_member(member: Member, **request: Any) -> Member | None:
    """A conditional UpdateItem of the member's record: the record as it now is, or None when the condition did not
    hold (another writer got there first, or a retry finds its work done)."""
    try:
        response = table().update_item(Key={"pool": member.pool, "id": member.id}, ReturnValues="ALL_NEW", **request)
    except ClientError as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return Member.from_item(response["Attributes"])


def release_lease(member: Member, job_id: str, state: str, **attrs: Any) -> Member | None:
    """The job's build is over and the member goes back to the pool in `state` (ready or stopping): the lease and
    any grant are removed, its builds counted. None when the member is no longer leased to this job (a retry)."""
    now = _now()
    names = {"#state": "state"}
    values: dict[str, Any] = {":state": state, ":job": job_id, ":now": now, ":one": 1}
    sets = ["#state = :state", "state_changed_at = :now", "idle_since = :now"]
    for index, (name, value) in enumerate(sorted(attrs.items())):
        names[f"#a{index}"] = name
        values[f":a{index}"] = Decimal(str(value)) if isinstance(value, float) else value
        sets.append(f"#a{index} = :a{index}")
    return _update_member(
        member,
        UpdateExpression="SET " + ", ".join(sets) + " ADD builds :one "
        "REMOVE lease_job, lease_execution, leased_at, grant_token, granted_at, queued_at",
        ConditionExpression="lease_job = :job",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def picked_up(member: Member, job_id: str) -> Member | None:
    """The granted job took its member: the grant needs no resending. None if the member is not leased to it."""
    return _update_member(
        member,
        UpdateExpression="REMOVE grant_token, granted_at",
        ConditionExpression="lease_job = :job",
        ExpressionAttributeValues={":job": job_id},
    )


def remove(member: Member) -> bool:
    """Delete the member's record and decrement the counter in one transaction; False if it was already gone."""
    items = [
        {
            "Delete": {
                "TableName": load().pool_table,
                "Key": {"pool": member.pool, "id": member.id},
                "ConditionExpression": "attribute_exists(id)",
            }
        },
        {
            "Update": {
                "TableName": load().pool_table,
                "Key": {"pool": member.pool, "id": COUNTER_ID},
                "UpdateExpression": "ADD instances :minus",
                "ExpressionAttributeValues": {":minus": -1},
            }
        },
    ]
    removed = transact(items) is None
    if removed:
        log.info("member removed", member_id=member.id, instance_id=member.instance_id, kind=member.kind)
    return removed


def leased_to(pool: str, job_id: str) -> list[Member]:
    """The members leased to a job (release's way when acquire returned no instance)."""
    return [m for m in members(pool) if m.lease_job == job_id]


def retire(member: Member, reason: str) -> bool:
    """Retire a member: mark it `retiring` (if it is still as read: a lease or a state change since wins), terminate
    its instance, then remove its record and slot. A member already `retiring` (a retried release) is finished.
    True if this call retired it."""
    retiring = member if member.state == RETIRING else mark(member, RETIRING, retire_reason=reason)
    if retiring is None:
        return False
    if retiring.instance_id:
        instances.terminate_if_present([retiring.instance_id])
    log.info("member retired", member_id=member.id, instance_id=member.instance_id, reason=reason)
    return remove(retiring)


def lock_keeper(pool: str, holder: str, now: float, until: float) -> bool:
    """Take the action's keeper lock for one pass until `until` (epoch seconds: the invocation's end, so that a pass
    that dies holds it no longer than its function could run); False when another pass holds it. Two passes over one
    action at once (the schedule's and release's nudge) would both see the pool below its minimum and both launch."""
    try:
        table().put_item(
            Item={
                "pool": pool,
                "id": KEEPER_LOCK_ID,
                "holder": holder,
                "locked_at": Decimal(str(round(now, 3))),
                "lock_until": Decimal(str(round(until, 3))),
                "expires_at": int(until) + LOCK_RETENTION_SECONDS,
            },
            ConditionExpression="attribute_not_exists(id) OR lock_until < :now",
            ExpressionAttributeValues={":now": Decimal(str(round(now, 3)))},
        )
    except ClientError as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def unlock_keeper(pool: str, holder: str) -> bool:
    """Release the action's keeper lock if this pass still holds it; False when it does not (it expired and another
    pass took it)."""
    try:
        table().delete_item(
            Key={"pool": pool, "id": KEEPER_LOCK_ID},
            ConditionExpression="#holder = :holder",
            ExpressionAttributeNames={"#holder": "holder"},
            ExpressionAttributeValues={":holder": holder},
        )
    except ClientError as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True
