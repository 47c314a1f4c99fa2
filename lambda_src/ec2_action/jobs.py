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


def create(job_id: str, execution_arn: str, action: dict[str, str], pipeline_name: str) -> bool:
    """Write the item of a new build; False if it already exists (a duplicate event or a second poller)."""
    now = int(time.time())
    item = {
        "job_id": job_id,
        "execution_arn": execution_arn,
        "action": action,
        "pipeline_name": pipeline_name,
        "open_job_id": job_id,
        "created_at": now,
        "expires_at": now + RETENTION_SECONDS,
    }
    try:
        _table().put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
    except ClientError as exc:
        if _conditional_failed(exc):
            return False
        raise
    return True


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
        return plain(_table().update_item(**request)["Attributes"])
    except ClientError as exc:
        if _conditional_failed(exc):
            return None
        raise


def mark_continued(job_id: str) -> dict[str, Any] | None:
    """Before J1 is closed with a continuation token: J1 no longer needs an answer. None if J1 was not open."""
    return _update(
        job_id, "SET continued = :true REMOVE open_job_id", {":true": True, ":j1": job_id}, "open_job_id = :j1"
    )


def undo_continued(job_id: str) -> None:
    """The continuation could not be published: J1 is still the job to answer."""
    _update(job_id, "SET open_job_id = :j1 REMOVE continued", {":j1": job_id}, "attribute_not_exists(open_job_id)")


def set_open_job(job_id: str, open_job_id: str) -> dict[str, Any] | None:
    """The continuation job arrived: it is the one to answer. The whole item, or None if there is no such build."""
    return _update(job_id, "SET open_job_id = :j", {":j": open_job_id})


_STORE_RESULT = "SET #result = :r REMOVE task_token"


def store_result(job_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """Store the build's result; the execution is over, so no task token is awaited any more."""
    item = _update(job_id, _STORE_RESULT, {":r": result}, names={"#result": "result"})
    if item is None:
        raise LookupError(f"the jobs table has no item for job {job_id}")
    return item


def store_result_if_absent(job_id: str, result: dict[str, Any]) -> dict[str, Any] | None:
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


def set_instance(job_id: str, instance_id: str) -> None:
    _update(job_id, "SET instance_id = :i", {":i": instance_id})


def await_command(job_id: str, task_token: str, instance_id: str, plugin_name: str) -> None:
    """Store the task token before the command is sent, so that no command can end unseen."""
    _update(
        job_id,
        "SET task_token = :t, instance_id = :i, plugin_name = :p REMOVE command_id",
        {":t": task_token, ":i": instance_id, ":p": plugin_name},
    )


def set_command(job_id: str, task_token: str, command_id: str) -> None:
    _update(job_id, "SET command_id = :c", {":c": command_id, ":t": task_token}, "task_token = :t")


def clear_task_token(job_id: str, task_token: str) -> None:
    """The token was delivered (or is dead): forget it, unless a newer attempt already replaced it."""
    _update(job_id, "REMOVE task_token", {":t": task_token}, "task_token = :t")


def _scan(request: dict[str, Any]) -> list[dict[str, Any]]:
    table = _table()
    items: list[dict[str, Any]] = []
    while True:
        page = table.scan(**request, ConsistentRead=True)
        items.extend(plain(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def pending() -> list[dict[str, Any]]:
    """Items the sweep must look at: a task token still awaited, or a stored result the open job has not received."""
    return _scan(
        {
            "FilterExpression": "attribute_exists(task_token) OR (attribute_exists(#result) AND "
            "attribute_exists(open_job_id) AND attribute_not_exists(reported_to))",
            "ExpressionAttributeNames": {"#result": "result"},
        }
    )


def unanswered() -> list[dict[str, Any]]:
    """Items the reaper must look at: no result stored, never answered."""
    return _scan(
        {
            "FilterExpression": "attribute_not_exists(#result) AND attribute_not_exists(reported_to)",
            "ExpressionAttributeNames": {"#result": "result"},
        }
    )
