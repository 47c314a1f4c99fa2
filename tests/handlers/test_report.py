"""report (ReportResult): the one answer of a build, to the open job (the continuation job the poller took, else the
first job), whatever order the build's end and the continuation job come in."""

import json
from typing import Any

import pytest
from conftest import ACCOUNT, REGION, STACK, Agent, Cloud, Pipeline, build_spec, wait_for
from test_poll import SCHEDULE, STARTED, PollerDied, die_at
from test_run_command import online_instance

from ec2_action import aws, errors, jobs
from ec2_action import codepipeline as cp_helpers
from ec2_action.config import load
from ec2_action.handlers import poll, report, run_command
from emulator import faults
from harness.matrix import SDK_ATTEMPTS


def started_build(cloud: Cloud, pipeline: Pipeline) -> tuple[dict[str, Any], str]:
    """A build the poller started (its Details link published, its continuation job taken): (the state machine's
    input job, execution ARN)."""
    job_id = pipeline.start()
    poll.handler(STARTED, cloud.context)
    execution_arn = cloud.item(job_id)["execution_arn"]
    described = cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return json.loads(described["input"])["job"], execution_arn


def started_build_whose_continuation_is_queued(cloud: Cloud, pipeline: Pipeline) -> tuple[dict[str, Any], str]:
    """A build whose poller published the Details link and died before it polled again: the continuation job waits
    in CodePipeline's queue, unclaimed."""
    job_id = pipeline.start()
    die_at("after-call.codepipeline.PutJobSuccessResult", aws.client("codepipeline"))
    with pytest.raises(PollerDied):
        poll.handler(STARTED, cloud.context)
    item = cloud.item(job_id)
    assert item["continued"] is True and "open_job_id" not in item
    described = cloud.client("stepfunctions").describe_execution(executionArn=item["execution_arn"])
    return json.loads(described["input"])["job"], item["execution_arn"]


def final(cloud: Cloud, state: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    """ReportResult's Parameters (asl/build-job.asl.json)."""
    return report.handler({"execution_arn": execution_arn, "state": state}, cloud.context)


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
        "instance": {
            "instance_id": "i-0123456789abcdef0",
            "subnet_id": "subnet-1",
            "launched_at": "now",
            "launched_epoch": 1.0,
        },
        "ssm": {"online": True, "checks": 2, "platform_type": "Linux", "agent_version": "3.3.2746.0"},
        "command": command,
        "release": {"terminated": ["i-0123456789abcdef0"]},
    }


class Calls:
    """The jobs table's and Lambda's API calls the report makes (botocore events; the calls go through)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        aws.table(load().jobs_table).meta.client.meta.events.register("before-parameter-build.dynamodb", self.record)
        aws.client("lambda").meta.events.register("before-parameter-build.lambda", self.record)

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.made.append((model.name, params))

    def names(self) -> list[str]:
        return [name for name, _ in self.made]


def test_the_result_is_stored_and_the_continuation_job_claimed_in_one_write(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    continuation = pipeline.continuation_of(job["id"])
    calls = Calls()

    reported = final(cloud, succeeded_state(cloud, job), execution_arn)

    assert reported["reported_to"] == continuation and reported["succeeded"] is True
    assert calls.names() == ["UpdateItem"]  # one write to the jobs table; then the answer
    item = cloud.item(job["id"])
    assert item["reported_to"] == continuation and item["result"]["succeeded"] is True
    [result] = pipeline.results(continuation)
    assert result.kind == "success" and result.external_execution_id == execution_arn
    assert result.summary.startswith("Build succeeded on instance i-0123456789abcdef0")
    assert "all 12 tests passed" in result.summary


def test_a_result_before_the_continuation_job_waits_for_the_poller_which_is_woken(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    job, execution_arn = started_build_whose_continuation_is_queued(cloud, pipeline)
    calls = Calls()

    reported = final(cloud, succeeded_state(cloud, job), execution_arn)

    assert reported["reported_to"] is None  # nothing to answer yet: the result waits in the jobs table
    assert cloud.item(job["id"])["result"]["succeeded"] is True and "reported_to" not in cloud.item(job["id"])
    [invoke] = [params for name, params in calls.made if name == "Invoke"]  # the poller is woken at once
    assert invoke["FunctionName"] == cloud.settings["poll_function_name"] and invoke["InvocationType"] == "Event"
    assert json.loads(invoke["Payload"]) == cp_helpers.CONTINUATION_WAKE_UP

    summary = poll.handler(cp_helpers.CONTINUATION_WAKE_UP, cloud.context)  # the woken poller

    continuation = pipeline.continuation_of(job["id"])
    assert summary["continued"] == summary["answered"] == [continuation]
    [result] = pipeline.results(continuation)
    assert result.kind == "success" and result.external_execution_id == execution_arn
    assert cloud.item(job["id"])["reported_to"] == continuation


def test_an_execution_of_the_previous_definition_asking_for_its_link_keeps_its_first_job_open(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    """Executions in flight during an upgrade run the definition they started with, whose PublishDetailsLink step
    invoked the report with mode "continue": the report leaves the first job open (no link), and the build's final
    report answers that job."""
    job_id = pipeline.start()
    # Started as the previous definition's poller did: no link published (J1 stays the open job).
    faults.inject_api_error(
        "codepipeline", "PutJobSuccessResult", "ThrottlingException", "Rate exceeded", times=SDK_ATTEMPTS
    )
    poll.handler(STARTED, cloud.context)
    execution_arn = cloud.item(job_id)["execution_arn"]
    described = cloud.client("stepfunctions").describe_execution(executionArn=execution_arn)
    job = json.loads(described["input"])["job"]

    assert report.handler({"mode": "continue", "job": job, "execution_arn": execution_arn}, cloud.context) == {}
    assert pipeline.results(job_id) == [] and "continued" not in cloud.item(job_id)

    reported = final(cloud, succeeded_state(cloud, job), execution_arn)
    assert reported["reported_to"] == job_id
    [result] = pipeline.results(job_id)
    assert result.kind == "success"


@pytest.mark.parametrize("order", ["continuation job first", "result first"])
def test_a_retried_report_and_later_sweeps_answer_nothing_more(cloud: Cloud, pipeline: Pipeline, order: str) -> None:
    if order == "continuation job first":
        job, execution_arn = started_build(cloud, pipeline)
        final(cloud, succeeded_state(cloud, job), execution_arn)
    else:
        job, execution_arn = started_build_whose_continuation_is_queued(cloud, pipeline)
        final(cloud, succeeded_state(cloud, job), execution_arn)
        poll.handler(SCHEDULE, cloud.context)
    continuation = pipeline.continuation_of(job["id"])

    for _ in range(2):  # a retried ReportResult and another sweep change nothing
        assert final(cloud, succeeded_state(cloud, job), execution_arn)["reported_to"] == continuation
        summary = poll.handler(SCHEDULE, cloud.context)
        assert summary["answered"] == summary["continued"] == []

    [result] = pipeline.results(continuation)
    assert result.kind == "success"
    assert cloud.item(job["id"])["reported_to"] == continuation
    execution = pipeline.client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"][0]
    assert execution["status"] in ("InProgress", "Succeeded")  # the runner thread finishes it asynchronously


def test_invalid_configuration_is_a_configuration_error(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    cause = {"errorMessage": "ImageId 'ami-x' is not an AMI id", "errorType": "InvalidJobConfiguration"}
    error = {"Error": "InvalidJobConfiguration", "Cause": json.dumps(cause)}
    state = {"job": job, "error": error, "failed_step": "AcquireInstance", "release": {}}

    reported = final(cloud, state, execution_arn)

    continuation = pipeline.continuation_of(job["id"])
    assert reported == {
        "succeeded": False,
        "message": "The action's configuration is invalid:\nImageId 'ami-x' is not an AMI id",
        "reported_to": continuation,
    }
    [result] = pipeline.results(continuation)
    assert (result.kind, result.failure_type) == ("failure", "ConfigurationError")
    assert result.external_execution_id == execution_arn


def test_failed_build_reports_exit_code_and_log(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    continuation = pipeline.continuation_of(job["id"])
    state = succeeded_state(cloud, job)
    state["command"].update(status="Failed", response_code=2, stderr_tail="make: *** [test] Error 2\n")

    reported = final(cloud, state, execution_arn)

    assert reported["succeeded"] is False and reported["reported_to"] == continuation
    [result] = pipeline.results(continuation)
    assert result.failure_type == "JobFailed"
    assert result.message.startswith("The build failed with exit code 2 on instance i-0123456789abcdef0")
    assert "BuildOnLinux/stdout" in result.message and result.message.rstrip().endswith("Error 2")


def test_a_build_stopped_in_run_build_command_points_to_its_commands_log(
    cloud: Cloud, pipeline: Pipeline, agent: Agent
) -> None:
    """The task timed out (States.Timeout): no command output in the state, so the report finds the command the
    task awaited on the instance (ListCommands) and names its log."""
    job, execution_arn = started_build(cloud, pipeline)
    instance = online_instance(cloud, job)
    build = build_spec(cloud.linux_ami, command="echo still building")
    run = {"task_token": "token", "job": job, "build": build, "instance": instance}
    command_id = run_command.handler(run, cloud.context)["command_id"]
    agent.final_event(command_id)
    state = {"job": job, "build": build, "instance": instance, "error": {"Error": "States.Timeout", "Cause": ""},
             "failed_step": "RunBuildCommand"}  # fmt: skip

    message = final(cloud, state, execution_arn)["message"]

    prefix = f"{command_id}/{instance['instance_id']}/BuildOnLinux"
    assert message.startswith(
        f"Full log: CloudWatch Logs group {cloud.settings['build_log_group']}, stream {prefix}/stdout"
    )
    assert "The build exceeded its timeout of 60 minutes (TimeoutMinutes) plus 15 minutes" in message


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
        ((), "AcquireInstance"),
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


def test_a_job_whose_wait_for_capacity_timed_out_reports_its_actions_cap(cloud: Cloud, pipeline: Pipeline) -> None:
    """WaitForCapacity's own States.Timeout (no keeper pass expired the wait first): the report names the action and
    its cap, as a CapacityTimeout from the keeper does."""
    job, execution_arn = started_build(cloud, pipeline)
    build = succeeded_state(cloud, job)["build"]
    state = {"job": job, "build": build, "queued": True, "instance": None, "failed_step": "WaitForCapacity",
             "error": {"Error": "States.Timeout", "Cause": ""}}  # fmt: skip

    message = final(cloud, state, execution_arn)["message"]

    minutes = build["task_timeout_seconds"] // 60
    assert message == (
        f"The build never started: it waited {minutes} minutes for capacity: action build allows 10 concurrent builds "
        "and all were busy; raise max_concurrent_builds or the build timeout."
    )


def test_sweep_answers_a_result_that_could_not_be_sent(cloud: Cloud, pipeline: Pipeline) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    continuation = pipeline.continuation_of(job["id"])
    state = {"job": job, "error": {"Error": "InvalidJobConfiguration", "Cause": "bad"}}
    faults.inject_api_error("codepipeline", "PutJobFailureResult", "ThrottlingException", "Rate exceeded", times=None)
    with pytest.raises(Exception, match="Rate exceeded"):
        final(cloud, state, execution_arn)  # Step Functions gives up: ReportFailed
    item = cloud.item(job["id"])
    assert "reported_to" not in item and item["result"]["failure_type"] == "ConfigurationError"  # claim given back

    faults.clear()  # the throttling is over
    assert poll.handler(SCHEDULE, cloud.context)["answered"] == [continuation]
    [result] = pipeline.results(continuation)
    assert result.failure_type == "ConfigurationError"


def test_the_report_clears_the_task_token(cloud: Cloud, pipeline: Pipeline) -> None:
    """The token stays in the item after its delivery (outcome.deliver) until the result is stored."""
    job, execution_arn = started_build(cloud, pipeline)
    jobs.await_command(job["id"], "token", "i-0123456789abcdef0", "BuildOnLinux", 1.0)

    final(cloud, succeeded_state(cloud, job), execution_arn)

    assert "task_token" not in cloud.item(job["id"])
    wait_for(lambda: pipeline.results(pipeline.continuation_of(job["id"])), what="the answer")


def test_a_build_finished_after_spot_interruptions_says_so(cloud: Cloud, pipeline: Pipeline) -> None:
    """acquire counts the interruptions in $.attempt; the summary's first line names them and the instance the build
    finished on, with its purchase option."""
    job, execution_arn = started_build(cloud, pipeline)
    continuation = pipeline.continuation_of(job["id"])
    state = succeeded_state(cloud, job)
    state["instance"].update(instance_type="t3.large", lifecycle="on-demand")
    history = [{"instance_id": "i-1", "instance_type": "t3.large", "lifecycle": "spot", "step": "RunBuildCommand",
                "at": "2026-01-01T00:00:00Z"}]  # fmt: skip
    state["attempt"] = {"interruptions": 1, "history": history}

    reported = final(cloud, state, execution_arn)

    assert reported["succeeded"] is True and reported["reported_to"] == continuation
    [result] = pipeline.results(continuation)
    assert result.summary.splitlines()[0].endswith("; interrupted 1 time, finished on i-0123456789abcdef0 (on-demand).")


def test_a_job_that_failed_after_interruptions_names_them_even_the_last_uncounted(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    """acquire failed after an interruption ($.interrupted still in the state, not yet counted in $.attempt): the
    message counts it too, with the step the interruption's cause names."""
    job, execution_arn = started_build(cloud, pipeline)
    continuation = pipeline.continuation_of(job["id"])
    cause = errors.interruption_cause("i-2", "Server.SpotInstanceTermination", "2026-01-01T00:00:00Z",
                                      "WaitForSsmOnline")  # fmt: skip
    lambda_cause = {"errorMessage": cause, "errorType": "SpotInterrupted"}
    state = {
        "job": job,
        "instance": {"instance_id": "i-2", "member_id": "m-0123456789ab", "pool": "build", "kind": "ephemeral"},
        "attempt": {"interruptions": 1, "history": [{"instance_id": "i-1", "step": "RunBuildCommand"}]},
        "interrupted": {"Error": "SpotInterrupted", "Cause": json.dumps(lambda_cause)},
        "error": {"Error": "NoCapacity", "Cause": json.dumps({"errorMessage": "no capacity in any pool"})},
        "failed_step": "AcquireInstance",
    }

    reported = final(cloud, state, execution_arn)

    assert reported["succeeded"] is False
    [result] = pipeline.results(continuation)
    assert result.message.startswith(
        "The build was interrupted 2 times before this (i-1 during RunBuildCommand, i-2 during WaitForSsmOnline)"
    )
    assert "No EC2 capacity for the build, even after retries: no capacity in any pool" in result.message
