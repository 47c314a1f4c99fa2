"""poll: take CodePipeline jobs of our action types and start (or continue) their builds; sweep what events missed.

Triggers: the STARTED event of an action of ours (polls only that type), a schedule (polls every type, then sweeps),
and the report function's asynchronous wake-up `{"poll": "continuation"}` when a build ends before its continuation
job was taken (polls every type, no sweep: a burst of builds must not start a sweep per build).

Once a build's execution has started, the poller closes its first job with a continuation token (the console's
Details link then opens the execution) and polls again: the continuation job CodePipeline creates for it is usually
there already, and is claimed and acknowledged by the same invocation, so the final report can answer it at once.

Every step from PollForJobs to StartExecution can be the last one a dying poller takes, so the order makes each
crash point recoverable (DESIGN.md, "Jobs and continuation"): the job is recorded in the jobs table (the claim, with
its nonce and the exact execution input) before it is acknowledged, and the sweep starts the execution of any claimed
job that has none. Acknowledging again and starting an execution by the job's name are idempotent, so finishing
another poller's work is safe. The claim also keeps pollers apart: a job claimed by another poller is skipped, and
each invocation takes a bounded number of jobs, well inside its timeout.
"""

from __future__ import annotations

import functools
import json
import random
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, codepipeline, jobs, log, outcome
from ..config import Config, load
from ..messages import CONFIGURATION_ERROR, JOB_FAILED
from ..payloads import ActionTypeId, Result

BATCH_SIZE = 10
# Jobs one invocation takes: a STARTED event brings one job (a few more absorb a burst); the schedule takes more.
JOBS_PER_EVENT = 3
JOBS_PER_SCHEDULE = 20
MIN_REMAINING_MS = 20_000
# The sweep resumes a claim only this long after it was made: a live poller finishes its own in well under that.
RESUME_AFTER_SECONDS = 10


def execution_prefix(state_machine_arn: str) -> str:
    """`arn:...:execution:<state machine>:`; an execution's ARN is this prefix plus its name (the first job's id)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, list[str]]:
    log.start(context)
    config = load()
    detail = (event or {}).get("detail") or {}
    started_event = isinstance(detail.get("type"), dict)
    wake_up = event == codepipeline.CONTINUATION_WAKE_UP
    if started_event:
        action = config.action(detail["type"])
        actions = [action] if action else []
        if not action:
            log.warning("the event's action type is not configured here; nothing to poll", type=detail["type"])
    else:
        actions = list(config.actions)

    summary: dict[str, list[str]] = {
        "started": [],
        "linked": [],
        "continued": [],
        "resumed": [],
        "delivered": [],
        "answered": [],
        "failed": [],
    }
    limit = JOBS_PER_EVENT if started_event or wake_up else JOBS_PER_SCHEDULE
    for action in actions:
        try:
            _poll(config, action.type_id, limit, context, summary, detail if started_event else {}, event or {})
        except ClientError as exc:  # e.g. a type deleted outside Terraform: the other types and the sweep go on
            log.reset()
            log.error("cannot poll this action type", type=action.type_id, error=aws.error_code(exc) or repr(exc))
    if not (started_event or wake_up):
        _sweep(config, context, summary)
    log.reset()
    log.info("poll finished", **{key: value for key, value in summary.items() if value})
    return summary


def _time_left(context: Any) -> bool:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining is None or remaining() > MIN_REMAINING_MS


def _poll(
    config: Config,
    type_id: ActionTypeId,
    limit: int,
    context: Any,
    summary: dict[str, list[str]],
    detail: dict[str, Any],
    event: dict[str, Any],
) -> None:
    """Take at most `limit` jobs of one action type. A batch is tried in random order, so that pollers started by
    the same burst go after different jobs; a job another poller claimed costs one conditional write, no call.
    `detail` and `event`: the STARTED event that triggered the poll, if one did (its time is its job's start)."""
    client = aws.client("codepipeline")
    seen: set[str] = set()
    taken = 0
    while taken < limit and _time_left(context):
        found = client.poll_for_jobs(actionTypeId=type_id, maxBatchSize=BATCH_SIZE).get("jobs", [])
        fresh = [job for job in found if job["id"] not in seen]
        if not fresh:
            return
        random.shuffle(fresh)
        continued = len(summary["linked"])
        for job in fresh:
            if taken >= limit or not _time_left(context):
                return
            seen.add(job["id"])
            log.reset(job_id=job["id"])
            try:
                taken += _take(config, job, summary, started_at(job, detail, event))
            except Exception as exc:  # one bad job must not stop the others; its record lets the sweep go on
                log.error("cannot handle the job now; the sweep goes on with it", error=repr(exc))
        # A batch smaller than asked for emptied the queue: poll again only for what this batch itself created
        # (the continuation jobs of the builds it started).
        if len(found) < BATCH_SIZE and len(summary["linked"]) == continued:
            return


def started_at(job: dict[str, Any], detail: dict[str, Any], event: dict[str, Any]) -> float:
    """When the job's action started (epoch seconds; the metrics' time to command counts from it): the STARTED
    event's time when the event is this job's (same action execution), else now, its claim (a job found by a poll of
    the schedule, the sweep, or an event that brought another job)."""
    context = (job.get("data") or {}).get("pipelineContext") or {}
    action_execution_id = (context.get("action") or {}).get("actionExecutionId")
    if action_execution_id and detail.get("action-execution-id") == action_execution_id and event.get("time"):
        try:
            return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()
        except ValueError:
            log.warning("the STARTED event's time cannot be read", time=event["time"])
    return round(time.time(), 3)


def _take(config: Config, job: dict[str, Any], summary: dict[str, list[str]], started: float | None = None) -> bool:
    """Claim, acknowledge and start (or continue) one job; True if this poller took it. `started`: when its action
    started (started_at), now unless told."""
    token = (job.get("data") or {}).get("continuationToken")
    if token:
        return _continue(config, job, token, summary)
    return _start(config, job, summary, round(time.time(), 3) if started is None else started)


def _start(config: Config, job: dict[str, Any], summary: dict[str, list[str]], started: float) -> bool:
    job_id = job["id"]
    execution_arn = execution_prefix(config.state_machine_arn) + job_id
    log.bind(execution_arn=execution_arn)
    try:
        sanitized = codepipeline.sanitize_job(job)
    except codepipeline.UnsupportedJob as exc:
        return _refuse(job, CONFIGURATION_ERROR, f"This action cannot run the job: {exc}.", summary)
    log.bind(pipeline=sanitized["pipeline"]["name"])
    sanitized["started_at"] = started  # in the input stored at the claim: a restart keeps the same bytes
    execution_input = json.dumps({"job": sanitized})
    if not jobs.claim(
        job_id, job["nonce"], execution_arn, execution_input, sanitized["action"], sanitized["pipeline"]["name"]
    ):
        log.info("another poller has claimed the job")
        return False
    status = codepipeline.acknowledge(job_id, job["nonce"])
    if status != "InProgress":  # not ours, or e.g. TimedOut or Failed while it waited: nothing left to do
        log.info("the job is not ours to run", status=status)
        return False
    if _start_execution(config, job_id, execution_input):
        summary["started"].append(job_id)
    if _publish_details_link(job_id, execution_arn):
        summary["linked"].append(job_id)
    return True


def _publish_details_link(job_id: str, execution_arn: str) -> bool:
    """Close the first job with a continuation token (the execution's ARN), so that the console's Details link opens
    the execution; True if this call did. Best effort: if it fails, the first job stays open and the final report
    answers it (no link, same result)."""
    if jobs.mark_continued(job_id) is None:  # already continued, or answered: nothing to publish
        return False
    try:
        codepipeline.put_continuation(job_id, execution_arn, "Build running on EC2: the Details link opens it.")
    except ClientError as exc:
        jobs.undo_continued(job_id)
        log.warning("cannot publish the Details link; the first job is answered at the end", error=aws.error_code(exc))
        return False
    log.info("Details link published (continuation)")
    return True


def _refuse(job: dict[str, Any], failure_type: str, message: str, summary: dict[str, list[str]]) -> bool:
    """A job this action cannot run: its failure is recorded first, then answered (by the sweep if we die)."""
    result: Result = {"succeeded": False, "message": message, "failure_type": failure_type}
    action, pipeline_name = codepipeline.job_origin(job)
    if not jobs.claim(job["id"], job["nonce"], "", "", action, pipeline_name, result=result):
        return False
    if codepipeline.acknowledge(job["id"], job["nonce"]) != "InProgress":
        return False
    item = jobs.get(job["id"])
    if item and codepipeline.answer_open_job(item):
        summary["failed"].append(job["id"])
    return True


def _start_execution(config: Config, job_id: str, execution_input: str) -> bool:
    """StartExecution named after the job: True if this call started it, False if it already existed."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=config.state_machine_arn, name=job_id, input=execution_input
        )
    except ClientError as exc:
        if aws.error_code(exc) != "ExecutionAlreadyExists":
            jobs.record_start_error(job_id, f"{aws.error_code(exc)}: {exc}")
            raise
        log.info("the build was already started")
        return False
    log.info("build started")
    return True


def _continue(config: Config, job: dict[str, Any], token: str, summary: dict[str, list[str]]) -> bool:
    job_id = job["id"]
    prefix = execution_prefix(config.state_machine_arn)
    first_job_id = token[len(prefix) :] if token.startswith(prefix) else ""
    item = jobs.claim_continuation(first_job_id, job_id, job["nonce"]) if first_job_id else None
    if item is None:
        if first_job_id and jobs.get(first_job_id) is not None:
            log.info("another poller has claimed the continuation job")
            return False
        message = (
            f"The continuation token '{token[:200]}' names no build of this module (stack {config.stack}): the "
            "build's record may have expired or belongs to another installation. Retry the stage."
        )
        return _refuse(job, JOB_FAILED, message, summary)
    log.bind(first_job_id=first_job_id, execution_arn=item.get("execution_arn"))
    if codepipeline.acknowledge(job_id, job["nonce"]) != "InProgress":
        log.info("the continuation job is not ours to answer")
        return False
    log.info("continuation job received")
    summary["continued"].append(job_id)
    if codepipeline.answer_open_job(item):
        summary["answered"].append(job_id)
    return True


def _sweep(config: Config, context: Any, summary: dict[str, list[str]]) -> None:
    """The fallback for lost events and dead pollers: start claimed jobs that have no execution, deliver ended
    commands, answer stored results that the open job lacks. It goes on only while the invocation has time left;
    the next sweep takes what this one did not reach."""
    claimed_before = int(time.time()) - RESUME_AFTER_SECONDS
    unstarted, pending = jobs.sweep_items(claimed_before)
    try:
        ended = outcome.ended_commands(pending)
    except ClientError as exc:  # the next sweep tries again; answering stored results goes on meanwhile
        log.error("cannot list the ended build commands now", error=aws.error_code(exc) or repr(exc))
        ended = {}
    work = [(_resume_item, item) for item in unstarted] + [
        (functools.partial(_sweep_item, ended=ended), item) for item in pending
    ]
    for done, (step, item) in enumerate(work):
        if not _time_left(context):
            log.reset()
            log.warning("sweep stopped within the time left; the next sweep goes on", items_left=len(work) - done)
            return
        log.reset(job_id=item["job_id"], execution_arn=item.get("execution_arn"))
        step(config, item, summary)


def _resume_item(config: Config, item: dict[str, Any], summary: dict[str, list[str]]) -> None:
    try:
        if _resume(config, item):
            summary["resumed"].append(item["job_id"])
    except Exception as exc:  # the next sweep tries again; the reaper fails the job if it never starts
        log.error("cannot start the claimed job's execution now", error=repr(exc))


def _sweep_item(config: Config, item: dict[str, Any], summary: dict[str, list[str]], ended: dict[str, str]) -> None:
    try:
        command_id = ended.get(item["job_id"])
        if command_id and outcome.deliver(item, command_id):
            summary["delivered"].append(item["job_id"])
        if "result" in item and not item.get("open_job_id") and not item.get("reported_to"):
            item = _reopen_unpublished_continuation(item)
        answered = codepipeline.answer_open_job(item)
        if answered:
            summary["answered"].append(answered)
    except Exception as exc:  # the next sweep tries again
        log.error("sweep failed for this job", error=repr(exc))


def _reopen_unpublished_continuation(item: dict[str, Any]) -> dict[str, Any]:
    """A build ended with no open job to answer: its first job was marked continued, and either its continuation
    job is still to be taken (the sweep's poll takes it) or the continuation was never published (the poller died
    between the mark and PutJobSuccessResult). Acknowledging the first job again tells them apart: still InProgress
    means it was never closed, so it is the job to answer again."""
    if codepipeline.acknowledge(item["job_id"], item["nonce"]) != "InProgress":
        return item
    log.warning("the first job was marked continued but never closed (its poller stopped); answering it")
    jobs.undo_continued(item["job_id"])
    return jobs.get(item["job_id"]) or item


def _resume(config: Config, item: dict[str, Any]) -> bool:
    """Finish a claimed job's start if its execution does not exist; True if this call started it."""
    if not item.get("execution_input"):  # recorded before claims carried the input: the reaper judges it
        return False
    try:
        aws.client("stepfunctions").describe_execution(executionArn=item["execution_arn"])
        return False
    except ClientError as exc:
        if aws.error_code(exc) != "ExecutionDoesNotExist":
            raise
    status = codepipeline.acknowledge(item["job_id"], item["nonce"])
    if status is None:  # CodePipeline dispatched the job again: its next poller claims it with the new nonce
        return False
    if status != "InProgress":
        log.warning("the job ended in CodePipeline before its build started", status=status)
        jobs.abandon(item["job_id"], status)
        return False
    log.warning("the job was claimed but its execution never started (its poller stopped); starting it now")
    started = _start_execution(config, item["job_id"], item["execution_input"])
    _publish_details_link(item["job_id"], item["execution_arn"])  # its continuation job: the next poll takes it
    return started
