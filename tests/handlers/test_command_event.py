"""command_event: the SSM status-change event ends the RunBuildCommand task with the command's outcome; the sweep
does it when the event is lost. The task token stays in the jobs table until the report stores the result."""

import json
import time
from typing import Any

from conftest import Agent, Cloud, build_spec, make_job, wait_for
from test_poll import SCHEDULE
from test_run_command import online_instance, pooled_instance

from ec2_action import aws, jobs, outcome
from ec2_action.handlers import command_event, poll, run_command


def send_build(cloud: Cloud, task_token: Any, command: str) -> tuple[dict[str, Any], str, str]:
    """A build waiting in RunBuildCommand: (job, command id, execution ARN)."""
    job = make_job(input_artifact=None, configuration={})
    instance = online_instance(cloud, job)
    token, execution = task_token(job["id"])
    return job, attempt(cloud, job, instance, token, command), execution


def attempt(cloud: Cloud, job: dict[str, Any], instance: dict[str, Any], token: str, command: str) -> str:
    """One RunBuildCommand attempt (the task's token, the build's command): the command id."""
    event = {"task_token": token, "job": job, "build": build_spec(cloud.linux_ami, command=command),
             "instance": instance}  # fmt: skip
    return run_command.handler(event, cloud.context)["command_id"]


def retried_build(cloud: Cloud, agent: Agent, task_token: Any) -> tuple[dict[str, Any], str, str, str]:
    """A build whose first RunBuildCommand attempt sent its command and then failed (e.g. timed out before it
    returned), and whose retry, a Retry interval later, sent another: (job, older command, newer command,
    execution ARN of the retry's task)."""
    job = make_job(input_artifact=None, configuration={})
    instance = online_instance(cloud, job)
    first_token, _ = task_token(f"{job['id']}-1")
    older = attempt(cloud, job, instance, first_token, "echo first attempt")
    agent.final_event(older)
    time.sleep(outcome.CLOCK_TOLERANCE_SECONDS + 0.5)  # the Retry interval (2 s at least in the state machine)
    token, execution = task_token(f"{job['id']}-2")
    newer = attempt(cloud, job, instance, token, "echo second attempt")
    return job, older, newer, execution


def execution(cloud: Cloud, arn: str) -> dict[str, Any]:
    return cloud.client("stepfunctions").describe_execution(executionArn=arn)


def finished(cloud: Cloud, arn: str) -> dict[str, Any]:
    """The execution once it has left RUNNING (its task took the delivered outcome)."""
    return wait_for(lambda: (e := execution(cloud, arn))["status"] != "RUNNING" and e, what="the execution")


def test_failed_build_reaches_the_execution_with_exit_code_and_output(cloud: Cloud, agent: Agent, task_token) -> None:
    job, command_id, arn = send_build(cloud, task_token, "echo compiling; echo 'error: boom' >&2; exit 3")
    event = agent.final_event(command_id)

    assert command_event.handler(event, cloud.context) == {"delivered": True}

    described = finished(cloud, arn)
    assert described["status"] == "SUCCEEDED"  # the task succeeded: the build's failure is in its output
    output = json.loads(described["output"])
    assert output["command_id"] == command_id
    assert (output["status"], output["response_code"]) == ("Failed", 3)
    assert "compiling" in output["stdout_tail"] and "error: boom" in output["stderr_tail"]
    assert output["log_group"] == cloud.settings["build_log_group"]
    assert output["log_stream_prefix"].endswith("/BuildOnLinux")
    assert "retire" not in output  # an ephemeral build: no reset, no retire line
    assert cloud.item(job["id"])["task_token"]  # kept until the report stores the result (jobs.store_result)


def test_a_failed_reset_reaches_the_execution_as_the_reason_to_retire_the_instance(
    cloud: Cloud, agent: Agent, task_token
) -> None:
    job = make_job(input_artifact=None, configuration={})
    instance = pooled_instance(cloud, job, "docker-prune-that-is-missing")
    token, arn = task_token(job["id"])
    command_id = attempt(cloud, job, instance, token, "echo built")

    assert command_event.handler(agent.final_event(command_id), cloud.context) == {"delivered": True}

    output = json.loads(finished(cloud, arn)["output"])
    assert (output["status"], output["response_code"]) == ("Success", 0)
    assert output["retire"] == "the reset command exited 127"


def test_duplicate_event_delivers_nothing_twice(cloud: Cloud, agent: Agent, task_token) -> None:
    job, command_id, arn = send_build(cloud, task_token, "true")
    event = agent.final_event(command_id)
    assert command_event.handler(event, cloud.context) == {"delivered": True}
    finished(cloud, arn)
    assert cloud.item(job["id"])["task_token"]  # still there: the closed task refuses the second delivery
    assert command_event.handler(event, cloud.context) == {"delivered": False}


def test_non_final_statuses_and_foreign_commands_are_ignored(cloud: Cloud, agent: Agent, task_token) -> None:
    job, command_id, arn = send_build(cloud, task_token, "true")
    final = agent.final_event(command_id)
    in_progress = {**final, "detail": {**final["detail"], "status": "InProgress"}}
    assert command_event.handler(in_progress, cloud.context) == {"delivered": False}
    ssm = cloud.client("ssm")
    other = {
        "schemaVersion": "2.2",
        "description": "another team's document",
        "mainSteps": [{"action": "aws:runShellScript", "name": "Run", "inputs": {"runCommand": ["true"]}}],
    }
    ssm.create_document(Name="someone-else", Content=json.dumps(other), DocumentType="Command")
    foreign = ssm.send_command(DocumentName="someone-else", InstanceIds=[final["detail"]["instance-id"]],
                               Comment=job["id"])["Command"]["CommandId"]  # fmt: skip
    foreign_event = {**final, "detail": {**final["detail"], "command-id": foreign}}
    assert command_event.handler(foreign_event, cloud.context) == {"delivered": False}
    assert execution(cloud, arn)["status"] == "RUNNING"


def test_lost_event_is_delivered_by_the_sweep(cloud: Cloud, agent: Agent, task_token, pipeline) -> None:
    job, command_id, arn = send_build(cloud, task_token, "echo done")
    agent.final_event(command_id)  # and EventBridge loses it

    summary = poll.handler(SCHEDULE, cloud.context)

    assert summary["delivered"] == [job["id"]]
    described = finished(cloud, arn)
    output = json.loads(described["output"])
    assert (output["command_id"], output["status"]) == (command_id, "Success")
    # The token stays until the report: the next sweep meets a closed task and delivers nothing again.
    assert poll.handler(SCHEDULE, cloud.context)["delivered"] == []


def test_the_sweep_reads_ended_commands_with_one_call_however_many_builds_run(
    cloud: Cloud, agent: Agent, task_token, pipeline
) -> None:
    """A sweep's cost must not grow with the builds running or their length: one ListCommands for all of them, and
    GetCommandInvocation only for a command that ended."""
    running = [send_build(cloud, task_token, "sleep 30") for _ in range(3)]
    job, command_id, arn = send_build(cloud, task_token, "echo done")
    agent.final_event(command_id)  # and EventBridge loses it
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    ssm = aws.client("ssm")
    ssm.meta.events.register("before-call.ssm", record)
    try:
        summary = poll.handler(SCHEDULE, cloud.context)
    finally:
        ssm.meta.events.unregister("before-call.ssm", record)

    assert summary["delivered"] == [job["id"]]
    assert calls == ["ListCommands", "GetCommandInvocation"]
    assert json.loads(finished(cloud, arn)["output"])["command_id"] == command_id
    assert all(execution(cloud, other)["status"] == "RUNNING" for _, _, other in running)
    for _, other_command, _ in running:
        cloud.client("ssm").cancel_command(CommandId=other_command)


def test_the_event_of_a_closed_task_delivers_nothing(cloud: Cloud, agent: Agent, task_token) -> None:
    job, command_id, arn = send_build(cloud, task_token, "true")
    cloud.client("stepfunctions").send_task_success(taskToken=cloud.item(job["id"])["task_token"], output="{}")
    assert json.loads(finished(cloud, arn)["output"]) == {}
    event = agent.final_event(command_id)
    assert command_event.handler(event, cloud.context) == {"delivered": False}


def test_an_older_attempts_command_is_ignored(cloud: Cloud, agent: Agent, task_token) -> None:
    _, older, newer, arn = retried_build(cloud, agent, task_token)

    assert command_event.handler(agent.final_event(older), cloud.context) == {"delivered": False}
    assert execution(cloud, arn)["status"] == "RUNNING"  # the retry's task still waits for its own command

    assert command_event.handler(agent.final_event(newer), cloud.context) == {"delivered": True}
    described = finished(cloud, arn)
    output = json.loads(described["output"])
    assert output["command_id"] == newer and "second attempt" in output["stdout_tail"]


def test_the_sweep_delivers_the_latest_attempts_command_only(cloud: Cloud, agent: Agent, task_token, pipeline) -> None:
    job, _, newer, arn = retried_build(cloud, agent, task_token)
    agent.final_event(newer)  # both events lost

    assert poll.handler(SCHEDULE, cloud.context)["delivered"] == [job["id"]]

    described = finished(cloud, arn)
    assert json.loads(described["output"])["command_id"] == newer


def test_the_sweep_delivers_nothing_while_the_latest_attempt_has_sent_no_command(
    cloud: Cloud, agent: Agent, task_token, pipeline
) -> None:
    job = make_job(input_artifact=None, configuration={})
    instance = online_instance(cloud, job)
    first_token, first = task_token(f"{job['id']}-1")
    agent.final_event(attempt(cloud, job, instance, first_token, "true"))
    time.sleep(outcome.CLOCK_TOLERANCE_SECONDS + 0.5)
    token, arn = task_token(f"{job['id']}-2")
    jobs.await_command(job["id"], token, instance["instance_id"], "BuildOnLinux", time.time())  # then it died

    assert poll.handler(SCHEDULE, cloud.context)["delivered"] == []
    assert execution(cloud, arn)["status"] == "RUNNING"
    assert execution(cloud, first)["status"] == "RUNNING"  # the old token is no longer the item's
