"""The capacity queue (DESIGN.md, "Instance pools"): jobs that found their action at its cap wait here, in FIFO
order, each with the task token of its execution's WaitForCapacity step. Nothing polls while a job waits: whoever
frees capacity (release, the keeper, a new entry) serves the queue, and the token resumes the execution.

Entries live in the registry table: `pool="queue#<action key>", id="<enqueued epoch ms, 13 digits>#<job id>"`. A
grant is one transaction (delete the entry, decrement `queued`, lease a ready member or reserve a slot for the job,
the member carrying the grant's token), then SendTaskSuccess; a token that is gone undoes the grant. So an entry is
served once, and never dropped: it is granted, or failed with CapacityTimeout at its deadline.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from . import aws, log, messages, registry
from .config import ActionType, Config, load
from .jobs import plain
from .registry import COUNTER_ID, Member

QUEUE_PREFIX = "queue#"
# Answers of SendTaskSuccess/SendTaskFailure for a token nobody waits on any more (the execution timed out, was
# stopped, or the token was answered already).
TOKEN_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
# A grant whose execution has not picked its member up after this long is answered again (the first answer may
# have been lost with the invocation that sent it).
RESEND_AFTER_SECONDS = 30
CAPACITY_TIMEOUT = "CapacityTimeout"


def queue_pool(action_key: str) -> str:
    return f"{QUEUE_PREFIX}{action_key}"


@dataclass(frozen=True)
class Entry:
    """A queued job."""

    pool: str  # queue#<action key>
    id: str  # <enqueued epoch ms>#<job id>: the range key orders the queue
    token: str
    job_id: str
    execution_arn: str
    enqueued_at: float
    deadline: float
    config: str  # the job's configuration hash: only a member of that configuration serves it
    kind: str  # what a slot reserved for it becomes: the pool's strategy, or "ephemeral"

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Entry:
        values = plain(item)
        return cls(
            pool=values["pool"],
            id=values["id"],
            token=values["token"],
            job_id=values["job_id"],
            execution_arn=values.get("execution_arn", ""),
            enqueued_at=float(values["enqueued_at"]),
            deadline=float(values["deadline"]),
            config=values["config"],
            kind=values.get("kind", "ephemeral"),
        )

    def waited_seconds(self, now: float) -> int:
        return max(0, round(now - self.enqueued_at))


def entry_id(enqueued_at: float, job_id: str) -> str:
    return f"{round(enqueued_at * 1000):013d}#{job_id}"


def _counter_queued(action_key: str, delta: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": load().pool_table,
            "Key": {"pool": action_key, "id": COUNTER_ID},
            "UpdateExpression": "ADD queued :delta",
            "ExpressionAttributeValues": {":delta": delta},
        }
    }


def _delete_entry(entry: Entry) -> dict[str, Any]:
    return {
        "Delete": {
            "TableName": load().pool_table,
            "Key": {"pool": entry.pool, "id": entry.id},
            "ConditionExpression": "attribute_exists(id)",
        }
    }


def entries(action_key: str) -> list[Entry]:
    """The action's queue, oldest first (one Query; the range key sorts it)."""
    request: dict[str, Any] = {
        "KeyConditionExpression": "#pool = :pool",
        "ExpressionAttributeNames": {"#pool": "pool"},
        "ExpressionAttributeValues": {":pool": queue_pool(action_key)},
        "ConsistentRead": True,
    }
    found: list[Entry] = []
    while True:
        page = registry.table().query(**request)
        found.extend(Entry.from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def enqueue(
    action: ActionType,
    job_id: str,
    execution_arn: str,
    token: str,
    deadline: float,
    config: str,
    kind: str,
    now: float | None = None,
) -> Entry:
    """Queue a job with its task token. A job already queued (a retried invocation) keeps its place; its token is
    the new one."""
    now = time.time() if now is None else now
    for existing in entries(action.key):
        if existing.job_id == job_id:
            registry.table().update_item(
                Key={"pool": existing.pool, "id": existing.id},
                UpdateExpression="SET #token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": token},
            )
            log.info("job already queued: token replaced", entry=existing.id)
            return dataclasses.replace(existing, token=token)
    item = {
        "pool": queue_pool(action.key),
        "id": entry_id(now, job_id),
        "token": token,
        "job_id": job_id,
        "execution_arn": execution_arn,
        "enqueued_at": Decimal(str(round(now, 3))),
        "deadline": Decimal(str(round(deadline, 3))),
        "config": config,
        "kind": kind,
        "expires_at": int(deadline) + 24 * 3600,
    }
    put = {"Put": {"TableName": load().pool_table, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}}
    registry.client().transact_write_items(TransactItems=[put, _counter_queued(action.key, 1)])
    log.info("job queued", entry=item["id"], deadline=round(deadline))
    return Entry.from_item(item)


def drop(action_key: str, job_id: str) -> bool:
    """Remove the job's entry (its execution ended while it waited), decrementing the counter; False if none."""
    dropped = False
    for entry in entries(action_key):
        if entry.job_id == job_id and _remove_entry(entry):
            log.info("queue entry dropped", entry=entry.id)
            dropped = True
    return dropped


def _remove_entry(entry: Entry) -> bool:
    try:
        registry.client().transact_write_items(
            TransactItems=[_delete_entry(entry), _counter_queued(entry.pool.removeprefix(QUEUE_PREFIX), -1)]
        )
    except ClientError as exc:
        if aws.error_code(exc) == "TransactionCanceledException" and registry.cancellation_codes(exc)[0] == (
            "ConditionalCheckFailed"
        ):
            return False  # gone already: served, expired or dropped by another caller
        raise
    return True


# --- serving --------------------------------------------------------------------------------------------------------


def serve(config: Config, action: ActionType, now: float | None = None) -> list[str]:
    """Grant capacity to the queue's head entries while there is some; the job ids granted, in queue order.

    The head is served first and nobody passes it: when the head cannot be served (the cap is reached and no ready
    member fits it), serving stops. A ready member of another configuration than the head's gives way (it is
    retired), so that a pool's idle minimum never starves a queued job of another configuration.
    """
    granted: list[str] = []
    for entry in entries(action.key):
        outcome, member = _grant(config, action, entry)
        if outcome == FULL:
            break
        if member is not None and _answer(entry, member, now):
            granted.append(entry.job_id)
    return granted


GRANTED, GONE, FULL = "granted", "gone", "full"


def _grant(config: Config, action: ActionType, entry: Entry) -> tuple[str, Member | None]:
    """Reserve capacity for the entry: (GRANTED, a member leased to its job, carrying its token); (GONE, None) when
    the entry was served or dropped by someone else; (FULL, None) when there is no capacity for it."""
    pool = action.key
    if entry.kind != "ephemeral":
        for candidate in registry.ready_members(pool, entry.config):
            update = registry.lease_update(
                pool, candidate.id, entry.config, entry.job_id, entry.execution_arn, entry.token, entry.enqueued_at
            )
            codes = registry.transact([_delete_entry(entry), _counter_queued(pool, -1), update])
            if codes is None:
                return GRANTED, registry.member(pool, candidate.id)
            if codes[0] == "ConditionalCheckFailed":
                return GONE, None
    for attempt in range(2):
        item = registry.new_member_item(
            pool, entry.kind, entry.config, entry.job_id, entry.execution_arn, entry.token, entry.enqueued_at
        )
        put = {"Put": {"TableName": load().pool_table, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}}
        codes = registry.transact(
            [_delete_entry(entry), put, registry.counter_update(pool, action.cap, queued_delta=-1, fair=False)]
        )
        if codes is None:
            return GRANTED, Member.from_item(item)
        if codes[0] == "ConditionalCheckFailed":
            return GONE, None
        if attempt == 0 and not _evict_one(config, pool, entry.config):
            break
    return FULL, None


def _evict_one(config: Config, pool: str, keep_config: str) -> bool:
    """Retire one idle ready member that cannot serve the head (another configuration), freeing its slot."""
    for candidate in registry.members(pool):
        if candidate.state != registry.READY or candidate.lease_job is not None or candidate.config == keep_config:
            continue
        if registry.retire(candidate, "gave way to a queued job of another configuration"):
            return True
    return False


def _answer(entry: Entry, member: Member, now: float | None) -> bool:
    """Resume the entry's execution with its member; undo the grant when nobody waits on the token any more."""
    waited = entry.waited_seconds(time.time() if now is None else now)
    output = json.dumps({"member_id": member.id, "waited_seconds": waited})
    try:
        aws.client("stepfunctions").send_task_success(taskToken=entry.token, output=output)
    except ClientError as exc:
        if aws.error_code(exc) not in TOKEN_GONE:
            raise  # the grant stays: resend_grants answers it again
        log.warning("queued job no longer waits: grant undone", job_id=entry.job_id, error=aws.error_code(exc))
        undo_grant(member, entry.job_id)
        return False
    log.info("capacity granted", job_id=entry.job_id, member_id=member.id, waited_seconds=waited)
    return True


def undo_grant(member: Member, job_id: str) -> None:
    """Give a granted member back: a slot reserved for the job is removed, a leased ready member is ready again."""
    if member.state == registry.RESERVED:
        current = registry.member(member.pool, member.id)
        if current is not None and current.lease_job == job_id and current.state == registry.RESERVED:
            registry.remove(current)
        return
    try:
        registry.table().update_item(
            Key={"pool": member.pool, "id": member.id},
            UpdateExpression="SET #state = :ready, idle_since = :now, state_changed_at = :now "
            "REMOVE lease_job, lease_execution, leased_at, grant_token, granted_at, queued_at",
            ConditionExpression="lease_job = :job AND attribute_exists(grant_token)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":ready": registry.READY, ":job": job_id, ":now": Decimal(str(time.time()))},
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise


def expire(config: Config, action: ActionType, now: float | None = None) -> list[str]:
    """Fail the entries past their deadline with CapacityTimeout (the message says how long they waited and what to
    change); the job ids failed."""
    now = time.time() if now is None else now
    failed: list[str] = []
    for entry in entries(action.key):
        if entry.deadline > now or not _remove_entry(entry):
            continue
        cause = capacity_timeout_message(action, entry.waited_seconds(now))
        try:
            aws.client("stepfunctions").send_task_failure(taskToken=entry.token, error=CAPACITY_TIMEOUT, cause=cause)
        except ClientError as exc:
            if aws.error_code(exc) not in TOKEN_GONE:
                raise
        log.warning("queued job expired", job_id=entry.job_id, waited_seconds=entry.waited_seconds(now))
        failed.append(entry.job_id)
    return failed


def capacity_timeout_message(action: ActionType, waited_seconds: float) -> str:
    """CapacityTimeout's cause (messages.capacity_timeout): how long the job waited, the action's cap, what to raise."""
    return messages.capacity_timeout(waited_seconds, action)


def resend_grants(config: Config, action: ActionType, now: float | None = None) -> list[str]:
    """Answer again the grants not picked up within RESEND_AFTER_SECONDS; the job ids answered. A token nobody waits
    on any more only loses its grant mark: the member stays leased to the job, whose acquire or release (or, when its
    execution ended, the reaper) handles it."""
    now = time.time() if now is None else now
    resent: list[str] = []
    for member in registry.members(action.key):
        if not member.grant_token or not member.lease_job or (member.granted_at or now) > now - RESEND_AFTER_SECONDS:
            continue
        waited = round(now - float(member.queued_at or member.granted_at or now))
        output = json.dumps({"member_id": member.id, "waited_seconds": waited})
        try:
            aws.client("stepfunctions").send_task_success(taskToken=member.grant_token, output=output)
        except ClientError as exc:
            if aws.error_code(exc) not in TOKEN_GONE:
                raise
            registry.picked_up(member, member.lease_job)
            continue
        resent.append(member.lease_job)
    return resent
