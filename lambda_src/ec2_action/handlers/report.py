"""report (ReportResult): derive the build's result from the whole state and answer the open job exactly once.

The open job is the continuation job when the poller has taken it (the usual case), else the first job. The result
is stored and the answer claimed in one write; when no open job can be answered yet (the continuation job is still
in CodePipeline's queue), the result waits in the jobs table and the poller is woken to take that job and answer it.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, codepipeline, errors, job_metrics, jobs, log, messages, outcome
from ..config import load
from ..payloads import Result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log.start(context)
    if event.get("mode") == "continue":  # PublishDetailsLink of an execution of the previous definition: J1 stays open
        log.reset(job_id=(event.get("job") or {}).get("id"), execution_arn=event.get("execution_arn"))
        log.info("an execution of the previous definition asked for its Details link; its first job is answered")
        return {}
    return _final(event.get("state") or event, event["execution_arn"])


def result_of(state: dict[str, Any]) -> Result:
    config = load()
    console = messages.Console(aws.region(), config.partition)
    build = state.get("build")
    instance_id = (state.get("instance") or {}).get("instance_id", "")
    note = messages.release_warning(state["release_error"], instance_id) if state.get("release_error") else ""
    interruptions, history = interruptions_of(state)
    if state.get("error"):
        note += messages.interruptions_line(interruptions, history)
        command_id = _failed_command(state, instance_id)
        if command_id and build:
            prefix = f"{command_id}/{instance_id}/{outcome.plugin_name(build['platform'])}"
            note += messages.log_location(console, config.build_log_group, prefix) + "\n"
        # The state machine records the step whose Catch fired (asl/build-job.asl.json, the <Step>Failed states).
        step = state.get("failed_step", "")
        # The job's action names the cap in a capacity timeout (a state without it, e.g. a test's, reads without).
        job_action = (state.get("job") or {}).get("action")
        action = config.action(job_action) if job_action else None
        return messages.step_failure(
            step, state["error"], build, state, config.ssm_registration_timeout_seconds, note, action
        )
    if not build or not state.get("command"):
        return messages.step_failure(
            "ReportResult", {"Error": "IncompleteState", "Cause": json.dumps(sorted(state))}, build, state, 0, note
        )
    command = state["command"]
    if command.get("status") != "Success":
        note += messages.interruptions_line(interruptions, history)
    return messages.command_result(command, build, console, note, state.get("instance"), interruptions)


def interruptions_of(state: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The spot interruptions of the build (acquire counts them in $.attempt) and what is known of each; an
    interruption acquire could not count (it failed after it: $.interrupted is still in the state) is one more."""
    attempt = state.get("attempt") or {}
    count, history = int(attempt.get("interruptions") or 0), list(attempt.get("history") or [])
    if state.get("interrupted"):
        details = errors.interruption_of(state["interrupted"])
        instance_id = (state.get("instance") or {}).get("instance_id")
        history.append({"instance_id": details.get("instance_id") or instance_id, "step": details.get("step")})
        count += 1
    return count, history


def _failed_command(state: dict[str, Any], instance_id: str) -> str | None:
    """The build command of a build that failed in or after RunBuildCommand (e.g. its timeout), if one was sent."""
    if (state.get("command") or {}).get("command_id"):
        return str(state["command"]["command_id"])
    if state.get("failed_step") != "RunBuildCommand" or not instance_id:
        return None
    item = jobs.get(state["job"]["id"]) or {}
    return outcome.awaited_command(item) if item.get("instance_id") == instance_id else None


def _final(state: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    job_id = state["job"]["id"]
    log.reset(job_id=job_id, execution_arn=execution_arn)
    result = result_of(state)
    claimed = jobs.store_result_and_claim_report(job_id, result)
    log.info("result stored", succeeded=result["succeeded"], failure_type=result["failure_type"])
    if claimed is not None:
        reported_to = _answer_claimed(claimed, result, execution_arn)
    else:  # no open job yet, or already answered (a retried report): the item says which
        item = jobs.store_result(job_id, result)
        reported_to = codepipeline.answer_open_job(item) or item.get("reported_to")
        if not reported_to and not item.get("open_job_id"):
            _wake_poller()
    _emit_metrics(state, result)
    return {"succeeded": result["succeeded"], "message": result["message"], "reported_to": reported_to}


def _emit_metrics(state: dict[str, Any], result: Result) -> None:
    """The job's metrics, once its result is stored and answered (a retried report that failed before this line
    emits them once)."""
    action = load().action(state["job"].get("action") or {})
    if action is None:
        log.warning("the job's action is no longer served here: its metrics are not emitted")
        return
    job_metrics.emit_job_metrics(state, result, action.key)


def _answer_claimed(item: dict[str, Any], result: Result, execution_arn: str) -> str | None:
    """Answer the job this report claimed; on failure give the claim back, for a retry or the sweep."""
    open_job_id: str = item["reported_to"]
    try:
        answered = codepipeline.put_result(open_job_id, result, execution_arn, item.get("open_job_nonce"))
    except Exception:
        jobs.unclaim_report(job_id=item["job_id"], open_job_id=open_job_id)
        raise
    if not answered:  # closed by someone else meanwhile: give the claim back; the sweep looks at the item again
        jobs.unclaim_report(job_id=item["job_id"], open_job_id=open_job_id)
        return None
    return open_job_id


def _wake_poller() -> None:
    """Ask the poller to look for the continuation job now rather than at its next schedule (best effort)."""
    try:
        wake_up = json.dumps(codepipeline.CONTINUATION_WAKE_UP).encode()
        aws.client("lambda").invoke(FunctionName=load().poll_function_name, InvocationType="Event", Payload=wake_up)
    except ClientError as exc:  # the scheduled sweep answers the job anyway, a minute later at most
        log.warning("cannot invoke the poller", error=aws.error_code(exc))
        return
    log.info("the poller was asked to look for the continuation job now")
