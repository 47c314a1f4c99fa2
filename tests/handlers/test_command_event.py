"""command_event: the SSM status-change event ends the RunBuildCommand task with the command's outcome."""

import json
from typing import Any

from conftest import Agent, Cloud, build_spec, make_job, wait_for
from test_run_command import online_instance

from ec2_action.handlers import command_event, poll, run_command


def send_build(cloud: Cloud, task_token: Any, command: str) -> tuple[dict[str, Any], str, str]:
    """A build waiting in RunBuildCommand: (job, command id, execution ARN)."""
    job = make_job(input_artifact=None, configuration={})
    instance = online_instance(cloud, job)
    token, execution = task_token(job["id"])
    event = {
        "task_token": token,
        "job": job,
        "build": build_spec(cloud.linux_ami, command=command),
        "instance": instance,
    }
    return job, run_command.handler(event, cloud.context)["command_id"], execution


def execution(cloud: Cloud, arn: str) -> dict[str, Any]:
    return cloud.client("stepfunctions").describe_execution(executionArn=arn)


def test_failed_build_reaches_the_execution_with_exit_code_and_output(cloud: Cloud, agent: Agent, task_token) -> None:
    job, command_id, arn = send_build(cloud, task_token, "echo compiling; echo 'error: boom' >&2; exit 3")
    event = agent.final_event(command_id)

    assert command_event.handler(event, cloud.context) == {"delivered": True}

    described = wait_for(lambda: (e := execution(cloud, arn))["status"] != "RUNNING" and e, what="the execution")
    assert described["status"] == "SUCCEEDED"  # the task succeeded: the build's failure is in its output
    output = json.loads(described["output"])
    assert output["command_id"] == command_id
    assert (output["status"], output["response_code"]) == ("Failed", 3)
    assert "compiling" in output["stdout_tail"] and "error: boom" in output["stderr_tail"]
    assert output["log_group"] == cloud.settings["build_log_group"]
    assert output["log_stream_prefix"].endswith("/BuildOnLinux")
    assert "task_token" not in cloud.item(job["id"])


def test_duplicate_event_delivers_nothing_twice(cloud: Cloud, agent: Agent, task_token) -> None:
    _, command_id, _ = send_build(cloud, task_token, "true")
    event = agent.final_event(command_id)
    assert command_event.handler(event, cloud.context) == {"delivered": True}
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

    summary = poll.handler({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, cloud.context)

    assert summary["delivered"] == [job["id"]]
    described = wait_for(lambda: (e := execution(cloud, arn))["status"] != "RUNNING" and e, what="the execution")
    assert json.loads(described["output"])["status"] == "Success"
    assert "task_token" not in cloud.item(job["id"])


def test_token_of_a_closed_task_is_dropped(cloud: Cloud, agent: Agent, task_token) -> None:
    job, command_id, _ = send_build(cloud, task_token, "true")
    cloud.client("stepfunctions").send_task_success(taskToken=cloud.item(job["id"])["task_token"], output="{}")
    event = agent.final_event(command_id)
    assert command_event.handler(event, cloud.context) == {"delivered": False}
    assert "task_token" not in cloud.item(job["id"])
