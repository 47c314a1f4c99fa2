"""poll: take CodePipeline jobs of our action types and start (or continue) their builds; sweep what events missed.

Triggers: the STARTED event of an action of ours (polls only that type), a schedule (polls every type, then sweeps),
and the report function's asynchronous invoke `{}` (same as the schedule).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, codepipeline, jobs, log, outcome
from ..config import Config, load
from ..messages import CONFIGURATION_ERROR, JOB_FAILED

BATCH_SIZE = 10
MIN_REMAINING_MS = 20_000
TAKEN_BY_ANOTHER_WORKER = ("InvalidNonceException", "JobNotFoundException", "InvalidJobStateException")


def execution_prefix(state_machine_arn: str) -> str:
    """`arn:...:execution:<state machine>:`; an execution's ARN is this prefix plus its name (the first job's id)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, list[str]]:
    log.reset()
    config = load()
    detail = (event or {}).get("detail") or {}
    started_event = isinstance(detail.get("type"), dict)
    if started_event:
        action = config.action(detail["type"])
        actions = [action] if action else []
        if not action:
            log.warning("the event's action type is not configured here; nothing to poll", type=detail["type"])
    else:
        actions = list(config.actions)

    summary: dict[str, list[str]] = {"started": [], "continued": [], "delivered": [], "answered": [], "failed": []}
    for action in actions:
        _poll(config, action.type_id, context, summary)
    if not started_event:
        _sweep(summary)
    log.reset()
    log.info("poll finished", **{key: value for key, value in summary.items() if value})
    return summary


def _time_left(context: Any) -> bool:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining is None or remaining() > MIN_REMAINING_MS


def _poll(config: Config, type_id: dict[str, str], context: Any, summary: dict[str, list[str]]) -> None:
    client = aws.client("codepipeline")
    seen: set[str] = set()
    while _time_left(context):
        found = client.poll_for_jobs(actionTypeId=type_id, maxBatchSize=BATCH_SIZE).get("jobs", [])
        fresh = [job for job in found if job["id"] not in seen]
        if not fresh:
            return
        for job in fresh:
            seen.add(job["id"])
            log.reset(job_id=job["id"])
            try:
                _take(config, job, summary)
            except Exception as exc:  # one bad job must not stop the others; it is failed with the reason
                log.error("cannot handle the job", error=repr(exc))
                _fail(job["id"], JOB_FAILED, f"The build could not be started: {exc}", summary)


def _take(config: Config, job: dict[str, Any], summary: dict[str, list[str]]) -> None:
    try:
        status = aws.client("codepipeline").acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"]
    except ClientError as exc:
        if aws.error_code(exc) in TAKEN_BY_ANOTHER_WORKER:
            log.info("another worker has the job", error=aws.error_code(exc))
            return
        raise
    if status != "InProgress":  # e.g. TimedOut or Failed while it waited: nothing left to do
        log.info("the job is no longer in progress", status=status)
        return
    token = (job.get("data") or {}).get("continuationToken")
    if token:
        _continue(config, job["id"], token, summary)
    else:
        _start(config, job, summary)


def _start(config: Config, job: dict[str, Any], summary: dict[str, list[str]]) -> None:
    job_id = job["id"]
    try:
        sanitized = codepipeline.sanitize_job(job)
    except codepipeline.UnsupportedJob as exc:
        _fail(job_id, CONFIGURATION_ERROR, f"This action cannot run the job: {exc}.", summary)
        return
    execution_arn = execution_prefix(config.state_machine_arn) + job_id
    log.bind(execution_arn=execution_arn, pipeline=sanitized["pipeline"]["name"])
    if not jobs.create(job_id, execution_arn, sanitized["action"], sanitized["pipeline"]["name"]):
        log.info("the jobs table already has this job")
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=config.state_machine_arn, name=job_id, input=json.dumps({"job": sanitized})
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ExecutionAlreadyExists":
            raise
        log.info("the build was already started")
        return
    log.info("build started")
    summary["started"].append(job_id)


def _continue(config: Config, job_id: str, token: str, summary: dict[str, list[str]]) -> None:
    prefix = execution_prefix(config.state_machine_arn)
    first_job_id = token[len(prefix) :] if token.startswith(prefix) else ""
    item = jobs.set_open_job(first_job_id, job_id) if first_job_id else None
    if item is None:
        _fail(
            job_id,
            JOB_FAILED,
            f"The continuation token '{token[:200]}' names no build of this module (stack {config.stack}): the "
            "build's record may have expired or belongs to another installation. Retry the stage.",
            summary,
        )
        return
    log.bind(first_job_id=first_job_id, execution_arn=item.get("execution_arn"))
    log.info("continuation job received")
    summary["continued"].append(job_id)
    if codepipeline.answer_open_job(item):
        summary["answered"].append(job_id)


def _fail(job_id: str, failure_type: str, message: str, summary: dict[str, list[str]]) -> None:
    result = {"succeeded": False, "message": message, "failure_type": failure_type}
    if codepipeline.put_result(job_id, result, None):
        summary["failed"].append(job_id)


def _sweep(summary: dict[str, list[str]]) -> None:
    """The fallback for lost events: deliver ended commands, answer stored results that the open job lacks."""
    for item in jobs.pending():
        log.reset(job_id=item["job_id"], execution_arn=item.get("execution_arn"))
        try:
            if item.get("task_token") and item.get("command_id") and outcome.deliver(item, item["command_id"]):
                summary["delivered"].append(item["job_id"])
            answered = codepipeline.answer_open_job(item)
            if answered:
                summary["answered"].append(answered)
        except Exception as exc:  # the next sweep tries again
            log.error("sweep failed for this job", error=repr(exc))
