"""Real pipeline jobs through the deployed module: every case ends with the job answered and no instance left.

Faults (failing or slow commands, lost or duplicated events, crashes, capacity) and bad inputs are the matrices of
test_fault_matrix.py and test_bad_input_matrix.py (localcloud.matrix)."""

from __future__ import annotations

import pytest
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
