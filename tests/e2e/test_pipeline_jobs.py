"""Real pipeline jobs through the deployed module: every case ends with the job answered and no instance left."""

from __future__ import annotations

import json
import threading
import time

import pytest
from localcloud import events, faults
from localcloud.deployment import Deployment, PipelineRun, unique_name

pytestmark = pytest.mark.e2e

LINUX_AMI_OWNER = "amazon"


def linux_ami(deployment: Deployment) -> str:
    """An Amazon Linux AMI of the local cloud's region (the example's default image)."""
    return deployment.outputs["image_id"]


def build_config(deployment: Deployment, command: str, **extra: str) -> dict[str, str]:
    return {"ImageId": linux_ami(deployment), "InstanceType": "t3.micro", "Command": command, **extra}


def assert_answered_and_clean(run: PipelineRun) -> None:
    """The invariants of every job: one execution, a terminal job state, a final answer, no live instance."""
    assert run.status in {"Succeeded", "Failed"}, run
    assert len(run.state_machine_executions) == 1, run.state_machine_executions
    assert run.final_result is not None, run.results
    assert run.instances, "the job never launched an instance"
    assert run.live_instances == [], run.live_instances


def test_success_with_input_and_output_artifacts(deployment: Deployment) -> None:
    command = (
        "mkdir -p dist\n"
        'echo "built from $(cat app.txt) by job $JobId of $PipelineName" > dist/result.txt\n'
        "echo build log line"
    )
    pipeline = deployment.create_pipeline(
        unique_name("ok"), build_config(deployment, command, OutputArtifactPath="dist")
    )
    run = deployment.run(pipeline, {"app.txt": "source-v1"})

    assert run.status == "Succeeded", run.final_result
    assert_answered_and_clean(run)
    job_id = run.jobs[0].id
    output = deployment.read_output_artifact(run)
    assert output == {"result.txt": f"built from source-v1 by job {job_id} of {pipeline}\n".encode()}
    # The first job was closed with a continuation whose Details link is the execution.
    execution_arn = run.state_machine_executions[0]["executionArn"]
    assert run.results[0].continuation_token == execution_arn
    assert run.results[0].external_execution_id == execution_arn
    assert run.final_result.kind == "success"
    assert run.final_result.job_id != job_id  # the continuation job was found and answered


def test_failing_command_reports_exit_code_and_output_tail(deployment: Deployment) -> None:
    command = "echo compiling module-a\necho 'error: undefined symbol frobnicate' >&2\nexit 7"
    pipeline = deployment.create_pipeline(unique_name("fail"), build_config(deployment, command), output_artifact=False)
    run = deployment.run(pipeline)

    assert run.status == "Failed"
    assert_answered_and_clean(run)
    result = run.final_result
    assert result.kind == "failure" and result.failure_type == "JobFailed"
    assert "exit code 7" in result.message
    assert "undefined symbol frobnicate" in result.message
    assert deployment.outputs["build_log_group_name"] in result.message


def test_missing_output_artifact_path_fails_with_its_name(deployment: Deployment) -> None:
    config = build_config(deployment, "echo nothing to see", OutputArtifactPath="dist/app.zip")
    pipeline = deployment.create_pipeline(unique_name("noout"), config)
    run = deployment.run(pipeline)

    assert run.status == "Failed"
    assert_answered_and_clean(run)
    assert "OutputArtifactPath 'dist/app.zip' does not exist" in run.final_result.message


def test_job_without_input_artifact(deployment: Deployment) -> None:
    command = 'test -z "$(ls -A)" && echo "empty workspace $WORKSPACE"'
    pipeline = deployment.create_pipeline(
        unique_name("noin"), build_config(deployment, command), input_artifact=False, output_artifact=False
    )
    run = deployment.run(pipeline)

    assert run.status == "Succeeded", run.final_result
    assert_answered_and_clean(run)


def test_build_timeout_is_reported_and_the_instance_released(deployment: Deployment) -> None:
    config = build_config(deployment, "echo started\nsleep 600", TimeoutMinutes="1")
    pipeline = deployment.create_pipeline(unique_name("slow"), config, output_artifact=False)
    run = deployment.run(pipeline)

    assert run.status == "Failed"
    assert_answered_and_clean(run)
    assert "timeout of 1 minute" in run.final_result.message


def test_instance_that_never_registers_with_ssm(deployment: Deployment) -> None:
    faults.never_register(count=1)
    pipeline = deployment.create_pipeline(
        unique_name("noreg"), build_config(deployment, "echo never runs"), output_artifact=False
    )
    run = deployment.run(pipeline)

    assert run.status == "Failed"
    assert_answered_and_clean(run)
    assert "Systems Manager" in run.final_result.message


def test_duplicate_started_events_and_concurrent_pollers_start_one_execution(deployment: Deployment) -> None:
    pipeline = deployment.create_pipeline(
        unique_name("dup"), build_config(deployment, "sleep 1; echo once"), output_artifact=False
    )
    deployment.upload_source(pipeline, {"a.txt": "a"})
    started = time.time()
    execution_id = deployment.start(pipeline)
    started_event = _wait_for_started_event(pipeline, execution_id)

    # The same event delivered again, and two pollers racing for the same job.
    events.emit(
        started_event["source"],
        started_event["detail-type"],
        started_event["detail"],
        account=started_event["account"],
        region=started_event["region"],
        resources=started_event.get("resources", []),
    )
    lambda_client = deployment.client("lambda")
    pollers = [
        threading.Thread(
            target=lambda_client.invoke,
            kwargs={"FunctionName": deployment.outputs["poll_function_name"], "Payload": json.dumps(started_event)},
        )
        for _ in range(2)
    ]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join()

    run = deployment.wait(pipeline, execution_id, started)
    assert run.status == "Succeeded", run.final_result
    assert_answered_and_clean(run)
    finals = [result for result in run.results if not result.continuation_token]
    assert len(finals) == 1


def _wait_for_started_event(pipeline: str, execution_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in events.deliveries():
            event = delivery.payload if isinstance(delivery.payload, dict) else json.loads(delivery.payload)
            detail = event.get("detail", {})
            if (
                event.get("detail-type") == "CodePipeline Action Execution State Change"
                and detail.get("pipeline") == pipeline
                and detail.get("execution-id") == execution_id
                and detail.get("state") == "STARTED"
                and detail.get("type", {}).get("owner") == "Custom"
            ):
                return event
        time.sleep(0.05)
    raise AssertionError(f"no STARTED event for {pipeline} {execution_id}")
