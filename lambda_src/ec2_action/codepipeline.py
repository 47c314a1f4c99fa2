"""CodePipeline's job API: turn a polled job into the state machine's input, answer jobs within the API's limits."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from . import aws, jobs, log
from .messages import MESSAGE_LIMIT, SUMMARY_LIMIT

EXTERNAL_ID_LIMIT = 1500
CLOSED_JOB_ERRORS = ("InvalidJobStateException", "JobNotFoundException")


class UnsupportedJob(ValueError):
    """The job's artifacts are not what this action supports (at most one input and one output, in S3)."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _artifact(artifacts: list[dict[str, Any]], kind: str) -> dict[str, str] | None:
    if len(artifacts) > 1:
        raise UnsupportedJob(f"the action has {len(artifacts)} {kind} artifacts; at most one is supported")
    if not artifacts:
        return None
    location = artifacts[0].get("location") or {}
    s3 = location.get("s3Location") or {}
    if location.get("type") != "S3" or not s3.get("bucketName") or not s3.get("objectKey"):
        raise UnsupportedJob(f"the {kind} artifact '{artifacts[0].get('name')}' is not stored in S3")
    return {"name": artifacts[0].get("name", ""), "bucket": s3["bucketName"], "key": s3["objectKey"]}


def sanitize_job(job: dict[str, Any]) -> dict[str, Any]:
    """The state machine's input `job` (DESIGN.md): everything a step needs, never the artifactCredentials."""
    data = job.get("data") or {}
    context = data.get("pipelineContext") or {}
    type_id = data.get("actionTypeId") or {}
    return {
        "id": job["id"],
        "action": {key: type_id.get(key, "") for key in ("category", "owner", "provider", "version")},
        "configuration": dict((data.get("actionConfiguration") or {}).get("configuration") or {}),
        "pipeline": {
            "name": context.get("pipelineName", ""),
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


def put_result(job_id: str, result: dict[str, Any], execution_arn: str | None) -> bool:
    """Answer a job with a result; False if CodePipeline says the job is no longer open (already answered)."""
    client = aws.client("codepipeline")
    external_id = {"externalExecutionId": _clip(execution_arn, EXTERNAL_ID_LIMIT)} if execution_arn else {}
    try:
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
    except ClientError as exc:
        if aws.error_code(exc) in CLOSED_JOB_ERRORS:
            log.warning(
                "the job was no longer open; result not recorded", answered_job_id=job_id, error=aws.error_code(exc)
            )
            return False
        raise
    log.info("job answered", answered_job_id=job_id, succeeded=result["succeeded"])
    return True


def answer_open_job(item: dict[str, Any]) -> str | None:
    """Send the item's stored result to its open job, if both exist and nobody did yet; the job id answered."""
    open_job_id = item.get("open_job_id")
    if not open_job_id or "result" not in item or item.get("reported_to"):
        return None
    if not jobs.claim_report(item["job_id"], open_job_id):
        return None
    try:
        put_result(open_job_id, item["result"], item.get("execution_arn"))
    except Exception:
        jobs.unclaim_report(item["job_id"], open_job_id)
        raise
    return open_job_id
