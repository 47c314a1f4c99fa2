"""CodePipeline's job API: turn a polled job into the state machine's input, answer jobs within the API's limits."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from . import aws, jobs, log
from .messages import MESSAGE_LIMIT, SUMMARY_LIMIT
from .payloads import ActionTypeId, Artifact, Job, Result

EXTERNAL_ID_LIMIT = 1500
CLOSED_JOB_ERRORS = ("InvalidJobStateException", "JobNotFoundException")
# The report function's asynchronous event to the poll function: take the continuation job now (no sweep).
CONTINUATION_WAKE_UP = {"poll": "continuation"}
# AcknowledgeJob's answers when the job is not ours to take: another dispatch (nonce) of it, or no such job.
NOT_OURS_ERRORS = ("InvalidNonceException", "JobNotFoundException")


class UnsupportedJob(ValueError):
    """The job's artifacts are not what this action supports (at most one input and one output, in S3)."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _artifact(artifacts: list[dict[str, Any]], kind: str) -> Artifact | None:
    if len(artifacts) > 1:
        raise UnsupportedJob(f"the action has {len(artifacts)} {kind} artifacts; at most one is supported")
    if not artifacts:
        return None
    location = artifacts[0].get("location") or {}
    s3 = location.get("s3Location") or {}
    if location.get("type") != "S3" or not s3.get("bucketName") or not s3.get("objectKey"):
        raise UnsupportedJob(f"the {kind} artifact '{artifacts[0].get('name')}' is not stored in S3")
    return {"name": artifacts[0].get("name", ""), "bucket": s3["bucketName"], "key": s3["objectKey"]}


def job_origin(job: dict[str, Any]) -> tuple[ActionTypeId, str]:
    """The job's action type `{category, owner, provider, version}` and pipeline name."""
    data = job.get("data") or {}
    type_id = data.get("actionTypeId") or {}
    action = ActionTypeId(
        category=type_id.get("category", ""),
        owner=type_id.get("owner", ""),
        provider=type_id.get("provider", ""),
        version=type_id.get("version", ""),
    )
    return action, str((data.get("pipelineContext") or {}).get("pipelineName", ""))


def sanitize_job(job: dict[str, Any]) -> Job:
    """The state machine's input `job` (DESIGN.md): everything a step needs, never the artifactCredentials."""
    data = job.get("data") or {}
    context = data.get("pipelineContext") or {}
    action, pipeline_name = job_origin(job)
    return {
        "id": job["id"],
        "action": action,
        "configuration": dict((data.get("actionConfiguration") or {}).get("configuration") or {}),
        "pipeline": {
            "name": pipeline_name,
            "arn": context.get("pipelineArn", ""),
            "execution_id": context.get("pipelineExecutionId", ""),
            "stage": (context.get("stage") or {}).get("name", ""),
            "action": (context.get("action") or {}).get("name", ""),
            "action_execution_id": (context.get("action") or {}).get("actionExecutionId", ""),
        },
        "input_artifact": _artifact(data.get("inputArtifacts") or [], "input"),
        "output_artifact": _artifact(data.get("outputArtifacts") or [], "output"),
        "encryption_key_id": (data.get("encryptionKey") or {}).get("id"),
    }


def put_continuation(job_id: str, execution_arn: str, summary: str) -> None:
    aws.client("codepipeline").put_job_success_result(
        jobId=job_id,
        continuationToken=execution_arn,
        executionDetails={
            "summary": _clip(summary, SUMMARY_LIMIT),
            "externalExecutionId": _clip(execution_arn, EXTERNAL_ID_LIMIT),
            "percentComplete": 0,
        },
    )


def acknowledge(job_id: str, nonce: str) -> str | None:
    """AcknowledgeJob: the job's status (InProgress when it is ours to work on), or None when it is not ours.

    Acknowledging again with the same nonce is harmless and answers the job's current status, which is how a job
    recorded before its acknowledgement is checked and finished by whoever comes next.
    """
    try:
        return str(aws.client("codepipeline").acknowledge_job(jobId=job_id, nonce=nonce)["status"])
    except ClientError as exc:
        if aws.error_code(exc) in NOT_OURS_ERRORS:
            log.info("the job is not ours to acknowledge", acknowledged_job_id=job_id, error=aws.error_code(exc))
            return None
        raise


def put_result(job_id: str, result: Result, execution_arn: str | None, nonce: str | None = None) -> bool:
    """Answer a job with a result; False if CodePipeline says the job is no longer open (already answered).

    With the job's nonce, a job that was recorded but never acknowledged (its poller died in between) is
    acknowledged first and then answered, instead of being taken for closed.
    """
    try:
        _put_result(job_id, result, execution_arn)
    except ClientError as exc:
        code = aws.error_code(exc)
        if code == "InvalidJobStateException" and nonce and acknowledge(job_id, nonce) == "InProgress":
            log.info("the job had not been acknowledged; acknowledged it to answer it", answered_job_id=job_id)
            return put_result(job_id, result, execution_arn)
        if code in CLOSED_JOB_ERRORS:
            log.warning("the job was no longer open; result not recorded", answered_job_id=job_id, error=code)
            return False
        raise
    log.info("job answered", answered_job_id=job_id, succeeded=result["succeeded"])
    return True


def _put_result(job_id: str, result: Result, execution_arn: str | None) -> None:
    client = aws.client("codepipeline")
    external_id = {"externalExecutionId": _clip(execution_arn, EXTERNAL_ID_LIMIT)} if execution_arn else {}
    if result["succeeded"]:
        details = {"summary": _clip(result["message"], SUMMARY_LIMIT), "percentComplete": 100, **external_id}
        client.put_job_success_result(jobId=job_id, executionDetails=details)
    else:
        failure = {
            "type": result.get("failure_type") or "JobFailed",
            "message": _clip(result["message"] or "The build failed.", MESSAGE_LIMIT),
            **external_id,
        }
        client.put_job_failure_result(jobId=job_id, failureDetails=failure)


def answer_open_job(item: dict[str, Any]) -> str | None:
    """Send the item's stored result to its open job, if both exist and nobody did yet; the job id answered."""
    open_job_id: str | None = item.get("open_job_id")
    if not open_job_id or "result" not in item or item.get("reported_to"):
        return None
    if not jobs.claim_report(item["job_id"], open_job_id):
        return None
    try:
        put_result(open_job_id, item["result"], item.get("execution_arn"), item.get("open_job_nonce"))
    except Exception:
        jobs.unclaim_report(item["job_id"], open_job_id)
        raise
    return open_job_id
