"""run_command (RunBuildCommand, task token): store the token, send the build document; command_event completes the
task (the command's comment is the job id, which leads it to the token).

Systems Manager refuses the command (InvalidInstanceId) both for an instance whose agent cannot be reached yet
(InstanceNotReady: retried) and for one that is going away: then EC2 says which, a spot instance shutting down or
terminated being an interruption (SpotInterrupted: the build restarts on a fresh instance), any other a lost
instance (InstanceLost: the build fails)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, jobs, log, registration
from ..config import Config, load
from ..errors import ENDING_STATES, InstanceNotReady, instance_gone
from ..outcome import plugin_name
from ..payloads import BuildSpec, Job

DELIVERY_TIMEOUT_SECONDS = 600
# The kinds of pool member (registry records, `$.instance.kind`) whose instance serves one job after another.
POOLED_KINDS = ("warm", "stopped")


def document_parameters(job: Job, build: BuildSpec, reset_command: str | None = None) -> dict[str, list[str]]:
    """The SSM document's parameters (ssm/run-build.json.tftpl): all strings, empty for absent values. reset_command
    is given (possibly "") only for an instance of a pool: the step then cleans up after the build and runs it. An
    ephemeral instance's command leaves Pooled and ResetCommand to the document's defaults."""
    source, target = job.get("input_artifact"), job.get("output_artifact")
    pipeline = job["pipeline"]
    values = {
        "Command": build["command"],
        "WorkingDirectory": build.get("working_directory") or "",
        "InputBucket": source["bucket"] if source else "",
        "InputKey": source["key"] if source else "",
        "OutputBucket": target["bucket"] if target else "",
        "OutputKey": target["key"] if target else "",
        "OutputArtifactPath": build.get("output_artifact_path") or "",
        "KmsKeyId": job.get("encryption_key_id") or "",
        "PipelineName": pipeline.get("name", ""),
        "PipelineExecutionId": pipeline.get("execution_id", ""),
        "PipelineArn": pipeline.get("arn", ""),
        "JobId": job["id"],
        "executionTimeout": str(build["command_timeout_seconds"]),
    }
    if reset_command is not None:
        values |= {"Pooled": "true", "ResetCommand": reset_command}
    return {name: [value] for name, value in values.items()}


def pool_reset_command(config: Config, job: Job, instance: dict[str, Any]) -> str | None:
    """The reset command of the pool the instance belongs to ("" when the pool has none); None for an instance that
    ends with its job (ephemeral)."""
    if instance.get("kind") not in POOLED_KINDS:
        return None
    action = config.action(job["action"])
    return action.pool.reset_command if action and action.pool else ""


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    job: Job = event["job"]
    build: BuildSpec = event["build"]
    token = event["task_token"]
    instance: dict[str, Any] = event["instance"]
    instance_id = instance["instance_id"]
    log.start(context, job_id=job["id"], instance_id=instance_id)
    config = load()
    plugin = plugin_name(build["platform"])
    jobs.await_command(job["id"], token, instance_id, plugin, time.time())
    try:
        response = aws.client("ssm").send_command(
            DocumentName=config.document_name,
            InstanceIds=[instance_id],
            Parameters=document_parameters(job, build, pool_reset_command(config, job, instance)),
            TimeoutSeconds=DELIVERY_TIMEOUT_SECONDS,
            Comment=job["id"],
            CloudWatchOutputConfig={"CloudWatchLogGroupName": config.build_log_group, "CloudWatchOutputEnabled": True},
        )
    except ClientError as exc:
        if aws.error_code(exc) != "InvalidInstanceId":
            raise
        read = registration.ec2_state(instance_id)
        if read.name in ENDING_STATES:
            at = datetime.now(UTC).isoformat(timespec="seconds")
            raise instance_gone(instance_id, read.name, read.reason, read.spot, "RunBuildCommand", at) from exc
        raise InstanceNotReady(f"Systems Manager cannot reach instance {instance_id} yet: {exc}") from exc
    command_id = response["Command"]["CommandId"]
    log.info("build command sent", command_id=command_id, plugin=plugin)
    return {"command_id": command_id}
