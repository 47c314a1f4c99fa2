"""moto's ASL interpreter, patched: Lambda errors by name, Retry/Catch, task tokens, AWS time, validation."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator import server, stepfunctions

REPO = Path(__file__).resolve().parents[2]
SCALE = 0.05

CODE = """
import json
import boto3

attempts = 0

class InstanceNotReady(Exception):
    pass

class InvalidJobConfiguration(Exception):
    pass

def flaky(event, context):
    global attempts
    attempts += 1
    if attempts < 3:
        raise InstanceNotReady(f"attempt {attempts}")
    return {"Instances": [{"InstanceId": "i-0123456789abcdef0"}], "attempts": attempts}

def invalid(event, context):
    raise InvalidJobConfiguration("no image")

def callback(event, context):
    if event.get("answer"):
        output = json.dumps({"instance": event["instance"]})
        boto3.client("stepfunctions").send_task_success(taskToken=event["token"], output=output)
    return {"token": event["token"]}
"""


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", text)
    return buffer.getvalue()


def _definition(arns: dict[str, str]) -> dict[str, Any]:
    token_task = "arn:aws:states:::lambda:invoke.waitForTaskToken"
    return {
        "StartAt": "Acquire",
        "States": {
            "Acquire": {
                "Type": "Task",
                "Resource": arns["flaky"],
                "ResultPath": "$.acquired",
                "Retry": [{"ErrorEquals": ["InstanceNotReady"], "IntervalSeconds": 10, "MaxAttempts": 3}],
                "Next": "Pause",
            },
            "Pause": {"Type": "Wait", "Seconds": 20, "Next": "Run"},
            "Run": {
                "Type": "Task",
                "Resource": token_task,
                "Parameters": {
                    "FunctionName": arns["callback"],
                    "Payload": {
                        "token.$": "$$.Task.Token",
                        "answer": True,
                        "instance.$": "$.acquired.Instances[0].InstanceId",
                    },
                },
                "TimeoutSecondsPath": "$.timeouts.run",
                "ResultPath": "$.run",
                "Next": "Validate",
            },
            "Validate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arns["invalid"], "Payload.$": "$"},
                "Retry": [{"ErrorEquals": ["InvalidJobConfiguration"], "MaxAttempts": 0}],
                "Catch": [{"ErrorEquals": ["InvalidJobConfiguration"], "ResultPath": "$.error", "Next": "Hang"}],
                "End": True,
            },
            "Hang": {
                "Type": "Task",
                "Resource": token_task,
                "Parameters": {"FunctionName": arns["callback"], "Payload": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 20,
                "ResultPath": "$.hang",
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALCLOUD_TIME_SCALE", str(SCALE))
        cloud = server.start()
        yield cloud
        cloud.stop()


@pytest.fixture(scope="module")
def aws(cloud: server.LocalCloud) -> dict[str, Any]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)
    clients: dict[str, Any] = {n: session.client(n, endpoint_url=cloud.endpoint) for n in ("iam", "lambda", "ssm")}
    clients["sfn"] = session.client("stepfunctions", endpoint_url=cloud.endpoint)
    clients["role"] = clients["iam"].create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return clients


@pytest.fixture(scope="module")
def functions(aws: dict[str, Any]) -> dict[str, str]:
    return {
        name: aws["lambda"].create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=aws["role"],
            Handler=f"app.{name}",
            Code={"ZipFile": _zip(CODE)},
        )["FunctionArn"]
        for name in ("flaky", "invalid", "callback")
    }


def _wait(aws: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (result := aws["sfn"].describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution never ended"
        time.sleep(0.05)
    return result


def _events(aws: dict[str, Any], execution_arn: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in aws["sfn"].get_execution_history(executionArn=execution_arn)["events"] if e["type"] == kind]


def _submitted_token(aws: dict[str, Any], execution_arn: str) -> str:
    """The task token the execution's waitForTaskToken task handed to its function (once the task was submitted)."""
    deadline = time.monotonic() + 10
    while not (submitted := _events(aws, execution_arn, "TaskSubmitted")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return str(json.loads(submitted[0]["taskSubmittedEventDetails"]["output"])["Payload"]["token"])


def _machine(aws: dict[str, Any], name: str, definition: dict[str, Any]) -> str:
    return aws["sfn"].create_state_machine(name=name, definition=json.dumps(definition), roleArn=aws["role"])[
        "stateMachineArn"
    ]


def test_lambda_errors_retry_catch_task_tokens_and_timeouts(aws, functions):
    machine = _machine(aws, "job", _definition(functions))
    started = time.monotonic()

    execution = aws["sfn"].start_execution(stateMachineArn=machine, name="J1", input='{"timeouts": {"run": 30}}')
    result = _wait(aws, execution["executionArn"])

    # Retries after 10 s and 20 s, a 20 s wait and a 20 s timeout: 70 AWS seconds, about 3.5 s here.
    assert time.monotonic() - started < 20
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["acquired"]["attempts"] == 3
    assert output["run"] == {"instance": "i-0123456789abcdef0"}  # the JSONPath gave the scalar
    assert output["error"]["Error"] == "InvalidJobConfiguration"
    assert output["timeout"]["Error"] == "States.Timeout"
    history = aws["sfn"].get_execution_history(executionArn=execution["executionArn"])["events"]
    scheduled = [e for e in history if e["type"] == "TaskScheduled"]
    assert json.loads(scheduled[0]["taskScheduledEventDetails"]["parameters"])["Payload"]["answer"] is True
    assert scheduled[0]["taskScheduledEventDetails"]["timeoutInSeconds"] == 30  # history keeps AWS time
    entered = sum(e["type"].endswith("StateEntered") for e in history)
    assert stepfunctions.transitions(execution["executionArn"]) == entered + 2  # two retries are billed too

    waits = [e for e in scheduled if e["taskScheduledEventDetails"]["resource"] == "invoke.waitForTaskToken"]
    tokens = [json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["token"] for e in waits]
    assert len(tokens) == 2
    for token in tokens:  # one answered, one timed out: both are closed
        with pytest.raises(ClientError) as error:
            aws["sfn"].send_task_success(taskToken=token, output="{}")
        assert error.value.response["Error"]["Code"] == "TaskTimedOut"
    with pytest.raises(ClientError) as error:
        aws["sfn"].send_task_failure(taskToken="not-a-token", error="E", cause="C")
    assert error.value.response["Error"]["Code"] == "InvalidToken"


def test_send_task_failure_reaches_catch_with_error_and_cause(aws, functions):
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "callback", "Payload": {"token.$": "$$.Task.Token"}},
        "Catch": [{"ErrorEquals": ["BuildFailed"], "Next": "Caught"}],
        "End": True,
    }
    machine = _machine(aws, "fails", {"StartAt": "Wait", "States": {"Wait": wait, "Caught": {"Type": "Succeed"}}})
    execution = aws["sfn"].start_execution(stateMachineArn=machine, name="F1")["executionArn"]
    token = _submitted_token(aws, execution)

    aws["sfn"].send_task_failure(taskToken=token, error="BuildFailed", cause="exit status 2")

    result = _wait(aws, execution)
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"Error": "BuildFailed", "Cause": "exit status 2"}


def test_a_second_answer_right_after_the_first_is_refused(aws, functions):
    """AWS closes a token as soon as it accepts an answer: a duplicate (a redelivered event, the sweep) that comes
    before the execution has moved on is refused all the same, and the first answer is the task's output."""
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "callback", "Payload": {"token.$": "$$.Task.Token"}},
        "End": True,
    }
    machine = _machine(aws, "twice", {"StartAt": "Wait", "States": {"Wait": wait}})
    execution = aws["sfn"].start_execution(stateMachineArn=machine, name="T1")["executionArn"]
    token = _submitted_token(aws, execution)

    aws["sfn"].send_task_success(taskToken=token, output='{"answer": "first"}')
    with pytest.raises(ClientError) as error:
        aws["sfn"].send_task_success(taskToken=token, output='{"answer": "second"}')

    assert error.value.response["Error"]["Code"] == "TaskTimedOut"
    result = _wait(aws, execution)
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"answer": "first"}


def test_aws_sdk_tasks_use_the_apis_member_names(aws):
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:ssm:putParameter",
        "Parameters": {"Name": "/job/state", "Value.$": "$.value", "Type": "String"},
        "End": True,
    }
    machine = _machine(aws, "sdk", {"StartAt": "Put", "States": {"Put": task}})

    execution = aws["sfn"].start_execution(stateMachineArn=machine, input='{"value": "stored"}')
    result = _wait(aws, execution["executionArn"])

    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert json.loads(result["output"])["Version"] == 1
    assert aws["ssm"].get_parameter(Name="/job/state")["Parameter"]["Value"] == "stored"


def test_validation_rejects_dangling_transitions_and_accepts_the_modules_state_machine(aws):
    broken = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "Missing"}, "Orphan": {"Type": "Succeed"}},
    }
    rendered = re.sub(
        r"\$\{[a-z_]+_seconds\}|\$\{[a-z_]+_attempts\}", "3", (REPO / "asl/build-job.asl.json").read_text()
    )
    rendered = re.sub(r"\$\{partition\}", "aws", rendered)
    rendered = re.sub(r"\$\{(\w+)_function_arn\}", r"arn:aws:lambda:us-east-1:123456789012:function:\1", rendered)

    diagnostics = aws["sfn"].validate_state_machine_definition(definition=json.dumps(broken))
    valid = aws["sfn"].validate_state_machine_definition(definition=rendered)

    assert diagnostics["result"] == "FAIL"
    assert {(d["code"], d["location"]) for d in diagnostics["diagnostics"]} == {
        ("MISSING_TRANSITION_TARGET", "/States/A/Next"),
        ("UNREACHABLE_STATE", "/States/Orphan"),
    }
    assert valid == {**valid, "result": "OK", "diagnostics": []}
    with pytest.raises(ClientError) as error:
        _machine(aws, "broken", broken)
    assert error.value.response["Error"]["Code"] == "InvalidDefinition"
    machine = aws["sfn"].create_state_machine(name="published", definition=rendered, roleArn=aws["role"], publish=True)[
        "stateMachineArn"
    ]
    versions = aws["sfn"].list_state_machine_versions(stateMachineArn=machine)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [f"{machine}:1"]


def test_stop_execution_answers_once_the_execution_is_aborted(aws):
    waiting = {"StartAt": "Build", "States": {"Build": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    machine = _machine(aws, "stops", waiting)
    for attempt in range(5):  # the worker thread's timing varies: every attempt must read ABORTED at once
        execution_arn = aws["sfn"].start_execution(stateMachineArn=machine, name=f"stop-{attempt}")["executionArn"]
        aws["sfn"].stop_execution(executionArn=execution_arn)
        assert aws["sfn"].describe_execution(executionArn=execution_arn)["status"] == "ABORTED"


def test_a_stopped_executions_token_is_closed_and_the_execution_aborted_at_once(aws, functions):
    """AWS answers TaskTimedOut for the token of a task whose execution was stopped: nobody waits on it any more (a
    queued job whose execution the reaper or a pipeline stop ended must not be granted capacity)."""
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "callback", "Payload": {"token.$": "$$.Task.Token"}},
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
        "End": True,
    }
    machine = _machine(aws, "stopped", {"StartAt": "Wait", "States": {"Wait": wait, "Caught": {"Type": "Succeed"}}})
    execution = aws["sfn"].start_execution(stateMachineArn=machine, name="S1")["executionArn"]
    token = _submitted_token(aws, execution)

    aws["sfn"].stop_execution(executionArn=execution)

    assert aws["sfn"].describe_execution(executionArn=execution)["status"] == "ABORTED"  # not at the task's timeout
    for answer in (
        lambda: aws["sfn"].send_task_success(taskToken=token, output="{}"),
        lambda: aws["sfn"].send_task_failure(taskToken=token, error="E", cause="C"),
        lambda: aws["sfn"].send_task_heartbeat(taskToken=token),
    ):
        with pytest.raises(ClientError) as error:
            answer()
        assert error.value.response["Error"]["Code"] == "TaskTimedOut"
    time.sleep(0.5)  # nothing the woken task does afterwards changes the execution
    assert aws["sfn"].describe_execution(executionArn=execution)["status"] == "ABORTED"
    history = [e["type"] for e in aws["sfn"].get_execution_history(executionArn=execution)["events"]]
    assert history[-1] == "ExecutionAborted" and history[-2] == "TaskSubmitted"  # no failure, retry or catch
