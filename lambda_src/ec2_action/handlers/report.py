"""report: mode "continue" (PublishDetailsLink) closes the first job with a continuation token; mode "final"
(ReportResult) derives the build's result from the whole state and answers the open job exactly once."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, codepipeline, jobs, log, messages
from ..config import load
from ..payloads import Result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("mode") == "continue":
        _continue(event["job"]["id"], event["execution_arn"])
        return {}
    return _final(event.get("state") or event, event["execution_arn"])


def _continue(job_id: str, execution_arn: str) -> None:
    log.reset(job_id=job_id, execution_arn=execution_arn)
    if jobs.mark_continued(job_id) is None:
        item = jobs.get(job_id) or {}
        if not item.get("continued"):
            raise LookupError(f"job {job_id} is not open in the jobs table; cannot publish its continuation")
        log.info("continuation already recorded (a retried call)")
    try:
        codepipeline.put_continuation(job_id, execution_arn, "Build running on EC2: the Details link opens it.")
    except ClientError as exc:
        if aws.error_code(exc) == "InvalidJobStateException":
            log.info("the first job is already closed (an earlier attempt published the continuation)")
            return
        jobs.undo_continued(job_id)
        raise
    log.info("continuation published")
    # Taking the continuation job now, while the build runs, lets the final report answer it the moment the build
    # ends instead of waiting for the next sweep.
    _wake_poller()


def result_of(state: dict[str, Any], item: dict[str, Any]) -> Result:
    config = load()
    console = messages.Console(aws.region(), config.partition)
    build = state.get("build")
    instance_id = (state.get("instance") or {}).get("instance_id", "")
    note = messages.release_warning(state["release_error"], instance_id) if state.get("release_error") else ""
    if state.get("error"):
        if item.get("command_id") and item.get("plugin_name"):
            prefix = f"{item['command_id']}/{item['instance_id']}/{item['plugin_name']}"
            note += messages.log_location(console, config.build_log_group, prefix) + "\n"
        # The state machine records the step whose Catch fired (asl/build-job.asl.json, the <Step>Failed states).
        step = state.get("failed_step", "")
        return messages.step_failure(step, state["error"], build, state, config.ssm_registration_timeout_seconds, note)
    if not build or not state.get("command"):
        return messages.step_failure(
            "ReportResult", {"Error": "IncompleteState", "Cause": json.dumps(sorted(state))}, build, state, 0, note
        )
    return messages.command_result(state["command"], build, console, note)


def _final(state: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    job_id = state["job"]["id"]
    log.reset(job_id=job_id, execution_arn=execution_arn)
    result = result_of(state, jobs.get(job_id) or {})
    item = jobs.store_result(job_id, result)
    log.info("result stored", succeeded=result["succeeded"], failure_type=result["failure_type"])
    reported_to = codepipeline.answer_open_job(item) or item.get("reported_to")
    if not reported_to and not item.get("open_job_id"):
        _wake_poller()
    return {"succeeded": result["succeeded"], "message": result["message"], "reported_to": reported_to}


def _wake_poller() -> None:
    """Ask the poller to look for the continuation job now rather than at its next schedule (best effort)."""
    try:
        wake_up = json.dumps(codepipeline.CONTINUATION_WAKE_UP).encode()
        aws.client("lambda").invoke(FunctionName=load().poll_function_name, InvocationType="Event", Payload=wake_up)
    except ClientError as exc:  # the scheduled sweep answers the job anyway, a minute later at most
        log.warning("cannot invoke the poller", error=aws.error_code(exc))
        return
    log.info("the poller was asked to look for the continuation job now")
