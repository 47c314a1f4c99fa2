"""The jobs table (DESIGN.md, "Jobs and continuation"): one item per build, keyed by the first job's id.

Two writers race for the last step: report(final) stores the result, the poller stores the continuation job's id
(open_job_id). Both updates return the whole item, so whichever comes second sees both and answers; the answer is
claimed with a conditional write on reported_to, so CodePipeline receives exactly one result.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from . import aws
from .config import load
from .payloads import ActionTypeId, Result

RETENTION_SECONDS = 2 * 24 * 3600


def _table() -> Any:
    return aws.table(load().jobs_table)


def _conditional_failed(exc: ClientError) -> bool:
    return aws.error_code(exc) == "ConditionalCheckFailedException"


def plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; turn them into int/float for JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# A claim is stale after this long without the execution starting: a poller that saw the same dispatch of the job
# (same nonce) then finishes what the claimer began (acknowledge, start), both steps being idempotent.
CLAIM_STALE_SECONDS = 30
# The item of a job whose execution has not started: no continuation, no instance, no result, no answer.
_UNSTARTED = (
    "attribute_not_exists(continued) AND attribute_not_exists(instance_id) AND attribute_not_exists(#result) "
    "AND attribute_not_exists(reported_to) AND attribute_not_exists(abandoned)"
)


def claim(
    job_id: str,
    nonce: str,
    execution_arn: str,
    execution_input: str,
    action: ActionTypeId,
    pipeline_name: str,
    result: Result | None = None,
) -> bool:
    """Record the intent to run a new job, before it is acknowledged; True for the poller that may go on.

    Everything needed to acknowledge the job and start its execution is stored (the nonce, the exact execution
    input), so the sweep can finish the work of a poller that died anywhere after this write. False when another
    poller holds a fresh claim on the same dispatch of the job. A claim is taken over when CodePipeline dispatched
    the job again (another nonce) or the claim is stale, and only while the execution has not started.
    `result` is for a job that cannot run: it is stored at once, to be answered by the same exactly-once path.
    """
    now = int(time.time())
    expression = (
        "SET execution_arn = :arn, execution_input = :input, #action = :action, pipeline_name = :pipeline, "
        "nonce = :nonce, open_job_id = :job, open_job_nonce = :nonce, claimed_at = :now, "
        "created_at = if_not_exists(created_at, :now), expires_at = if_not_exists(expires_at, :expires)"
    )
    values: dict[str, Any] = {
        ":arn": execution_arn,
        ":input": execution_input,
        ":action": action,
        ":pipeline": pipeline_name,
        ":nonce": nonce,
        ":job": job_id,
        ":now": now,
        ":expires": now + RETENTION_SECONDS,
        ":stale": now - CLAIM_STALE_SECONDS,
    }
    names = {"#action": "action", "#result": "result"}
    if result is not None:
        expression += ", #result = :result"
        values[":result"] = result
    condition = f"attribute_not_exists(job_id) OR (({_UNSTARTED}) AND (nonce <> :nonce OR claimed_at < :stale))"
    try:
        _table().update_item(
            Key={"job_id": job_id},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ExpressionAttributeNames=names,
        )
    except ClientError as exc:
        if _conditional_failed(exc):
            return False
        raise
    return True


def record_start_error(job_id: str, error: str) -> None:
    """Why the execution could not be started yet (the sweep retries; the reaper's final message quotes it)."""
    _update(job_id, "SET start_error = :e", {":e": error[:1000]})


def abandon(job_id: str, job_status: str) -> None:
    """The job ended in CodePipeline (e.g. timed out, the pipeline was stopped) before its execution started."""
    _update(job_id, "SET abandoned = :s REMOVE open_job_id, open_job_nonce", {":s": job_status})


def get(job_id: str) -> dict[str, Any] | None:
    item = _table().get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
    return plain(item) if item else None


def _update(
    job_id: str,
    expression: str,
    values: dict[str, Any] | None = None,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Update an existing item; the new item, or None when the condition does not hold."""
    request: dict[str, Any] = {
        "Key": {"job_id": job_id},
        "UpdateExpression": expression,
        "ConditionExpression": "attribute_exists(job_id)" + (f" AND ({condition})" if condition else ""),
        "ReturnValues": "ALL_NEW",
    }
    if values:
        request["ExpressionAttributeValues"] = values
    if names:
        request["ExpressionAttributeNames"] = names
    try:
        item: dict[str, Any] = plain(_table().update_item(**request)["Attributes"])
        return item
    except ClientError as exc:
        if _conditional_failed(exc):
            return None
        raise


def mark_continued(job_id: str) -> dict[str, Any] | None:
    """Before J1 is closed with a continuation token: J1 no longer needs an answer. None if J1 was not open, or its
    answer is already claimed (a build that ended before its Details link was published: the link is moot)."""
    return _update(
        job_id,
        "SET continued = :true REMOVE open_job_id, open_job_nonce",
        {":true": True, ":j1": job_id},
        "open_job_id = :j1 AND attribute_not_exists(reported_to)",
    )


def undo_continued(job_id: str) -> None:
    """The continuation could not be published: J1 is still the job to answer."""
    _update(
        job_id,
        "SET open_job_id = :j1, open_job_nonce = nonce REMOVE continued",
        {":j1": job_id},
        "attribute_not_exists(open_job_id)",
    )


def claim_continuation(job_id: str, open_job_id: str, nonce: str) -> dict[str, Any] | None:
    """The continuation job arrived: record it as the job to answer, before it is acknowledged.

    The whole item for the poller that may go on; None when there is no such build, or another poller holds a fresh
    claim on the same dispatch (a stale one is taken over, see CLAIM_STALE_SECONDS).
    """
    now = int(time.time())
    return _update(
        job_id,
        "SET open_job_id = :j, open_job_nonce = :n, open_claimed_at = :now",
        {":j": open_job_id, ":n": nonce, ":now": now, ":stale": now - CLAIM_STALE_SECONDS},
        "attribute_not_exists(open_job_id) OR open_job_id <> :j OR open_job_nonce <> :n OR open_claimed_at < :stale",
    )


_STORE_RESULT = "SET #result = :r REMOVE task_token"


def store_result(job_id: str, result: Result) -> dict[str, Any]:
    """Store the build's result; the execution is over, so no task token is awaited any more."""
    item = _update(job_id, _STORE_RESULT, {":r": result}, names={"#result": "result"})
    if item is None:
        raise LookupError(f"the jobs table has no item for job {job_id}")
    return item


def store_result_and_claim_report(job_id: str, result: Result) -> dict[str, Any] | None:
    """Store the build's result and, in the same write, claim the right to answer the open job with it (reported_to
    takes open_job_id's value): the whole item for the caller that then answers `reported_to`. None when there is no
    open job to answer yet (its continuation job is not claimed) or it was answered: then store_result."""
    return _update(
        job_id,
        "SET #result = :r, reported_to = open_job_id REMOVE task_token",
        {":r": result},
        "attribute_exists(open_job_id) AND attribute_not_exists(reported_to)",
        {"#result": "result"},
    )


def store_result_if_absent(job_id: str, result: Result) -> dict[str, Any] | None:
    """The reaper's result for a build that never reported: never replaces a result or follows an answer.
    The whole item, or None when the build stored a result (or was answered) meanwhile."""
    condition = "attribute_not_exists(#result) AND attribute_not_exists(reported_to)"
    return _update(job_id, _STORE_RESULT, {":r": result}, condition, {"#result": "result"})


def claim_report(job_id: str, open_job_id: str) -> bool:
    """Claim the right to answer open_job_id with the stored result; True for exactly one caller."""
    condition = "attribute_exists(#result) AND open_job_id = :j AND attribute_not_exists(reported_to)"
    return _update(job_id, "SET reported_to = :j", {":j": open_job_id}, condition, {"#result": "result"}) is not None


def unclaim_report(job_id: str, open_job_id: str) -> None:
    """Sending the claimed answer failed: let a retry (or the sweep) claim it again."""
    _update(job_id, "REMOVE reported_to", {":j": open_job_id}, "reported_to = :j")


def await_command(job_id: str, task_token: str, instance_id: str, plugin_name: str, awaited_at: float) -> None:
    """Store the task token before the command is sent, so that no command can end unseen. `awaited_at` (epoch
    seconds, just before SendCommand) tells this attempt's command from an older attempt's (outcome.is_current)."""
    _update(
        job_id,
        "SET task_token = :t, instance_id = :i, plugin_name = :p, awaited_at = :a",
        {":t": task_token, ":i": instance_id, ":p": plugin_name, ":a": Decimal(str(round(awaited_at, 3)))},
    )


def take_token(job_id: str, task_token: str) -> bool:
    """Remove the awaited task token if it is still this one, before failing its task (an interrupted build): True for
    the one caller that may fail the task; False when another event about the instance took it, the report stored a
    result (which removes it) or a later attempt stored its own."""
    return _update(job_id, "REMOVE task_token", {":t": task_token}, "task_token = :t") is not None


def _scan(request: dict[str, Any]) -> list[dict[str, Any]]:
    table = _table()
    items: list[dict[str, Any]] = []
    while True:
        page = table.scan(**request, ConsistentRead=True)
        items.extend(plain(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


# A task token still awaited; a stored result the open job has not received; or a stored result with no open job
# because the first job was marked continued but the continuation never published (its poller died in between).
_PENDING = (
    "attribute_exists(task_token) OR (attribute_exists(#result) AND attribute_not_exists(reported_to) "
    "AND (attribute_exists(open_job_id) OR attribute_exists(continued)))"
)


def is_unstarted(item: dict[str, Any], claimed_before: int) -> bool:
    """The item of a job claimed before that time whose execution may not have started (_UNSTARTED, in Python)."""
    started = ("continued", "instance_id", "result", "reported_to", "abandoned")
    return int(item.get("claimed_at", claimed_before)) < claimed_before and not any(key in item for key in started)


def sweep_items(claimed_before: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the sweep looks at, read with one scan: (jobs claimed before that time whose execution may not have
    started, items with a task token still awaited or a stored result no job has received)."""
    items = _scan(
        {
            "FilterExpression": f"(({_UNSTARTED}) AND claimed_at < :before) OR {_PENDING}",
            "ExpressionAttributeNames": {"#result": "result"},
            "ExpressionAttributeValues": {":before": claimed_before},
        }
    )
    unstarted = [item for item in items if is_unstarted(item, claimed_before)]
    return unstarted, [item for item in items if not is_unstarted(item, claimed_before)]


def unanswered() -> list[dict[str, Any]]:
    """Items the reaper must look at: jobs (claimed; not the learned registration times) with no result stored, never
    answered."""
    return _scan(
        {
            "FilterExpression": "attribute_exists(claimed_at) AND attribute_not_exists(#result) "
            "AND attribute_not_exists(reported_to) AND attribute_not_exists(abandoned)",
            "ExpressionAttributeNames": {"#result": "result"},
        }
    )
