"""Real pipeline jobs through the deployed module: every case ends with the job answered and no instance left.

Faults (failing or slow commands, lost or duplicated events, crashes, capacity) and bad inputs are the matrices of
test_fault_matrix.py and test_bad_input_matrix.py (rows in fault_rows.py and bad_input_rows.py)."""

from __future__ import annotations

import re

import pytest

from harness import job_metrics
from harness.deployment import Deployment, PipelineRun, unique_name

pytestmark = pytest.mark.e2e

LINUX_AMI_OWNER = "amazon"


def linux_ami(deployment: Deployment) -> str:
    """An Amazon Linux AMI of the local cloud's region (the example's default image)."""
    return deployment.outputs["image_id"]


def build_config(deployment: Deployment, command: str, **extra: str) -> dict[str, str]:
    return {"ImageId": linux_ami(deployment), "InstanceType": "t4g.micro", "Command": command, **extra}


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
    # Its metrics: one job Succeeded, the latency split from STARTED to the command, the build's duration.
    window = job_metrics.JobWindow(deployment, run.started)
    assert job_metrics.problems(window, "Succeeded", run.ended - run.started, job_id) == []


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


def shown_output(message: str) -> tuple[list[str], list[str]]:
    """The lines a failure message shows under "Last lines of output" and under "Last lines of errors"."""
    output = message.split("Last lines of output:\n", 1)[1]
    output, _, errors = output.partition("\nLast lines of errors:\n")
    return output.splitlines(), errors.splitlines()


def test_a_huge_failing_build_shows_its_real_last_lines(deployment: Deployment) -> None:
    # 588,895 characters of output: Systems Manager returns the first 24,000 (up to about line 2,480).
    command = "seq 1 100000 | sed 's/^/line /'\necho 'error: the last test failed' >&2\nexit 1"
    pipeline = deployment.create_pipeline(unique_name("huge"), build_config(deployment, command), output_artifact=False)
    run = deployment.run(pipeline)

    assert run.status == "Failed"
    assert_answered_and_clean(run)
    message = run.final_result.message
    assert message.startswith("The build failed with exit code 1") and len(message) <= 5000
    output, errors = shown_output(message)
    assert output == [f"line {n}" for n in range(100_001 - len(output), 100_001)]  # whole lines, to the last
    assert len(output) >= 20 and not re.search(r"\bline \d{1,4}\n", message)  # nothing from the first 24,000
    assert "error: the last test failed" in errors and errors[-1] == "failed to run commands: exit status 1"


def test_terminal_control_sequences_never_reach_the_message(deployment: Deployment) -> None:
    command = "\n".join(
        [
            r"printf '\033[1;31mFAIL\033[0m test_login \033]8;;https://ci.example/1\007(details)\033]8;;\007\n'",
            r"printf 'progress 10%%\rprogress 100%%\n'",
            r"printf '\033[33mwarning:\033[0m deprecated\a\n' >&2",
            "exit 2",
        ]
    )
    pipeline = deployment.create_pipeline(unique_name("ansi"), build_config(deployment, command), output_artifact=False)
    run = deployment.run(pipeline)

    assert run.status == "Failed"
    assert_answered_and_clean(run)
    message = run.final_result.message
    output, errors = shown_output(message)
    assert output[-2:] == ["FAIL test_login (details)", "progress 100%"]
    assert "warning: deprecated" in errors
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", message), repr(message)
