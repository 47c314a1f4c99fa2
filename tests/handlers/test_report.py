"""report: the details link (continuation) and the one final answer, whatever order the two last steps come in."""

import json
from typing import Any

import pytest
from conftest import ACCOUNT, REGION, STACK, Cloud, Pipeline, build_spec
from test_poll import SCHEDULE, STARTED

from ec2_action.handlers import poll, report
from emulator import faults


def started_build(cloud: Cloud, pipeline: Pipeline) -> tuple[dict[str, Any], str]:
    """A build the poller started: (the state machine's input job, execution ARN)."""
    job_id = pipeline.start()
    poll.handler(STARTED, cloud.context)
    execution_arn = cloud.item(job_id)["execution_arn"]
    described = cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return json.loads(described["input"])["job"], execution_arn


def publish_link(cloud: Cloud, job: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    return report.handler({"mode": "continue", "job": job, "execution_arn": execution_arn}, cloud.context)


def final(cloud: Cloud, state: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    return report.handler({"mode": "final", "execution_arn": execution_arn, "state": state}, cloud.context)


def succeeded_state(cloud: Cloud, job: dict[str, Any]) -> dict[str, Any]:
    command = {
        "command_id": "c0ffee00-1111-2222-3333-444455556666",
        "instance_id": "i-0123456789abcdef0",
        "status": "Success",
        "status_details": "Success",
        "response_code": 0,
        "stdout_tail": "all 12 tests passed\n",
        "stderr_tail": "",
        "log_group": cloud.settings["build_log_group"],
        "log_stream_prefix": "c0ffee00-1111-2222-3333-444455556666/i-0123456789abcdef0/BuildOnLinux",
    }
    return {
        "job": job,
        "build": build_spec(cloud.linux_ami),
        "instance": {"instance_id": "i-0123456789abcdef0", "subnet_id": "subnet-1", "launched_at": "now"},
        "ssm": {"ping_status": "Online"},
        "command": command,
        "release": {"terminated": ["i-0123456789abcdef0"]},
    }


def test_continue_closes_the_first_job_with_the_execution_as_token(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)

    assert publish_link(cloud, job, execution_arn) == {}

    [result] = pipeline.results(job["id"])
    assert (result.kind, result.continuation_token) == ("success", execution_arn)
    assert (result.external_execution_id, result.percent_complete) == (execution_arn, 0)
    item = cloud.item(job["id"])
    assert item["continued"] is True and "open_job_id" not in item
    assert pipeline.continuation_of(job["id"])


def test_retried_continue_after_success_sends_nothing_more(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    publish_link(cloud, job, execution_arn)
    publish_link(cloud, job, execution_arn)  # Step Functions retried a call that had worked
    assert len(pipeline.results(job["id"])) == 1


@pytest.mark.parametrize("order", ["continuation job first", "result first"])
def test_continuation_race_gives_exactly_one_report(cloud: Cloud, pipeline: Pipeline, order: str) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    publish_link(cloud, job, execution_arn)
    continuation = pipeline.continuation_of(job["id"])
    state = succeeded_state(cloud, job)

    if order == "continuation job first":
        assert poll.handler(SCHEDULE, cloud.context)["continued"] == [continuation]
        assert pipeline.results(continuation) == []
        reported = final(cloud, state, execution_arn)
        assert reported["reported_to"] == continuation
    else:
        reported = final(cloud, state, execution_arn)
        assert reported["reported_to"] is None  # the continuation job has not been picked up yet
        summary = poll.handler(SCHEDULE, cloud.context)
        assert summary["continued"] == [continuation] and summary["answered"] == [continuation]

    assert reported["succeeded"] is True
    for _ in range(2):  # a retried ReportResult and another sweep change nothing
        final(cloud, state, execution_arn)
        poll.handler(SCHEDULE, cloud.context)
    [result] = pipeline.results(continuation)
    assert result.kind == "success" and result.external_execution_id == execution_arn
    assert result.summary.startswith("Build succeeded on instance i-0123456789abcdef0")
    assert "all 12 tests passed" in result.summary
    assert cloud.item(job["id"])["reported_to"] == continuation
    execution = pipeline.client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"][0]
    assert execution["status"] in ("InProgress", "Succeeded")  # the runner thread finishes it asynchronously


def test_invalid_configuration_answers_the_first_job(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    cause = {"errorMessage": "ImageId 'ami-x' is not an AMI id", "errorType": "InvalidJobConfiguration"}
    state = {"job": job, "error": {"Error": "InvalidJobConfiguration", "Cause": json.dumps(cause)}, "release": {}}

    reported = final(cloud, state, execution_arn)

    assert reported == {
        "succeeded": False,
        "message": "The action's configuration is invalid:\nImageId 'ami-x' is not an AMI id",
        "reported_to": job["id"],
    }
    [result] = pipeline.results(job["id"])
    assert (result.kind, result.failure_type) == ("failure", "ConfigurationError")
    assert result.external_execution_id == execution_arn


def test_failed_build_reports_exit_code_and_log(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    publish_link(cloud, job, execution_arn)
    continuation = pipeline.continuation_of(job["id"])
    poll.handler(SCHEDULE, cloud.context)
    state = succeeded_state(cloud, job)
    state["command"].update(status="Failed", response_code=2, stderr_tail="make: *** [test] Error 2\n")

    reported = final(cloud, state, execution_arn)

    assert reported["succeeded"] is False and reported["reported_to"] == continuation
    [result] = pipeline.results(continuation)
    assert result.failure_type == "JobFailed"
    assert result.message.startswith("The build failed with exit code 2 on instance i-0123456789abcdef0")
    assert "BuildOnLinux/stdout" in result.message and result.message.rstrip().endswith("Error 2")


@pytest.mark.parametrize(
    ("partition", "host"),
    [
        ("aws", "console.aws.amazon.com"),
        ("aws-cn", "console.amazonaws.cn"),
        ("aws-us-gov", "console.amazonaws-us-gov.com"),
    ],
)
def test_log_link_opens_the_console_of_the_modules_partition(
    cloud: Cloud, pipeline: Pipeline, partition: str, host: str
) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    # The partition is read from the state machine's ARN in EC2_ACTION_CONFIG, as Terraform renders it there.
    cloud.configure(state_machine_arn=f"arn:{partition}:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-job")
    state = succeeded_state(cloud, job)
    state["command"].update(status="Failed", response_code=2)

    message = final(cloud, state, execution_arn)["message"]

    assert f"): https://{REGION}.{host}/cloudwatch/home?region={REGION}#logsV2:log-groups/" in message
    assert message.count("https://") == 1


@pytest.mark.parametrize(
    ("state_keys", "step"),
    [
        ((), "ValidateJob"),
        (("build",), "PublishDetailsLink"),
        (("build",), "AcquireInstance"),
        (("build", "instance"), "WaitForSsmOnline"),
        (("build", "instance"), "RunBuildCommand"),  # the step's retries ran out before the command was sent
        (("build", "instance", "ssm"), "RunBuildCommand"),
    ],
)
def test_the_failed_step_is_the_one_the_state_machine_recorded(
    cloud: Cloud, pipeline: Pipeline, state_keys: tuple[str, ...], step: str
) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    state = succeeded_state(cloud, job)
    state = {key: state[key] for key in ("job", *state_keys)}
    state |= {"error": {"Error": "Lambda.Unknown", "Cause": "crashed"}, "failed_step": step}

    assert final(cloud, state, execution_arn)["message"] == f"The {step} step failed: Lambda.Unknown: crashed"


def test_an_execution_that_recorded_no_step_still_reports_its_error(cloud: Cloud, pipeline: Pipeline) -> None:
    """An execution started by the definition before failed_step existed, reported by the new code after an upgrade."""
    job, execution_arn = started_build(cloud, pipeline)
    state = {"job": job, "error": {"Error": "Lambda.Unknown", "Cause": "crashed"}}

    assert final(cloud, state, execution_arn)["message"] == "A step of the build failed: Lambda.Unknown: crashed"


def test_sweep_answers_a_result_that_could_not_be_sent(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    state = {"job": job, "error": {"Error": "InvalidJobConfiguration", "Cause": "bad"}}
    faults.inject_api_error("codepipeline", "PutJobFailureResult", "ThrottlingException", "Rate exceeded", times=None)
    with pytest.raises(Exception, match="Rate exceeded"):
        final(cloud, state, execution_arn)  # Step Functions gives up: ReportFailed
    assert "reported_to" not in cloud.item(job["id"])

    faults.clear()  # the throttling is over
    assert poll.handler(SCHEDULE, cloud.context)["answered"] == [job["id"]]
    [result] = pipeline.results(job["id"])
    assert result.failure_type == "ConfigurationError"
