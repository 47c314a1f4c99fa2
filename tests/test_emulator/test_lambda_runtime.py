"""The Docker-free Lambda runtime: real zips run in warm worker processes behind the moto server."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Iterator

import boto3
import pytest

from emulator import server
from emulator.awslambda import runtime as lambda_runtime

HANDLER = """
import os, sys, time
import boto3

calls = 0

def handler(event, context):
    global calls
    calls += 1
    print("event", event["n"])
    if event.get("raise"):
        raise KeyError("boom")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("list_topics"):  # a request no other test makes: the counting test counts it alone
        boto3.client("sns").list_topics()
    return {
        "calls": calls,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in ("GREETING", "AWS_REGION", "_HANDLER", "AWS_XRAY_CONTEXT_MISSING")},
        "trace": os.environ.get("_X_AMZN_TRACE_ID", ""),
        "queues": len(boto3.client("sqs").list_queues().get("QueueUrls", [])),
    }

def layered(event, context):
    import shared_helper
    return shared_helper.answer()
"""


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    cloud = server.start()
    yield cloud
    cloud.stop()


@pytest.fixture(scope="module")
def aws(cloud: server.LocalCloud) -> boto3.Session:
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)


@pytest.fixture(scope="module")
def function(cloud: server.LocalCloud, aws: boto3.Session) -> str:
    iam = aws.client("iam", endpoint_url=cloud.endpoint)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.client("sqs", endpoint_url=cloud.endpoint).create_queue(QueueName="seen-by-the-function")
    aws.client("lambda", endpoint_url=cloud.endpoint).create_function(
        FunctionName="probe",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip({"app.py": HANDLER})},
        Timeout=2,
        Environment={"Variables": {"GREETING": 'it\'s "quoted" $(not run)'}},
    )
    return role


def _invoke(cloud: server.LocalCloud, aws: boto3.Session, event: dict, name: str = "probe", **kwargs) -> dict:
    response = aws.client("lambda", endpoint_url=cloud.endpoint).invoke(
        FunctionName=name, Payload=json.dumps(event), **kwargs
    )
    response["Body"] = json.loads(response["Payload"].read())
    return response


def test_handler_result_context_environment_and_warm_state(cloud, aws, function):
    first = _invoke(cloud, aws, {"n": 1})
    second = _invoke(cloud, aws, {"n": 2}, LogType="Tail")

    assert "FunctionError" not in first
    body = second["Body"]
    assert body["calls"] == first["Body"]["calls"] + 1  # the same warm worker kept its module state
    assert body["name"] == "probe"
    assert body["arn"].endswith(":function:probe")
    assert body["request_id"] != first["Body"]["request_id"]
    assert 0 < body["remaining"] <= 2000
    assert body["env"] == {
        "GREETING": 'it\'s "quoted" $(not run)',
        "AWS_REGION": cloud.region,
        "_HANDLER": "app.handler",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    assert body["trace"].startswith("Root=1-")
    assert body["queues"] == 1  # boto3 inside the function reached the local cloud
    tail = base64.b64decode(second["LogResult"]).decode()
    assert "event 2" in tail and "END RequestId" in tail


def test_uncaught_error_is_unhandled_with_error_type_and_logged(cloud, aws, function):
    response = _invoke(cloud, aws, {"n": 3, "raise": True})

    assert response["FunctionError"] == "Unhandled"
    assert response["Body"]["errorType"] == "KeyError"
    assert response["Body"]["errorMessage"] == "'boom'"
    assert any("app.py" in frame for frame in response["Body"]["stackTrace"])
    logs = aws.client("logs", endpoint_url=cloud.endpoint)
    messages = [
        event["message"]
        for stream in logs.describe_log_streams(logGroupName="/aws/lambda/probe")["logStreams"]
        for event in logs.get_log_events(logGroupName="/aws/lambda/probe", logStreamName=stream["logStreamName"])[
            "events"
        ]
    ]
    assert "[ERROR] KeyError: 'boom'" in "\n".join(messages)


def test_timeout_kills_the_worker_and_a_fresh_one_serves_the_next_call(cloud, aws, function):
    before = _invoke(cloud, aws, {"n": 4})["Body"]["calls"]
    started = time.monotonic()
    response = _invoke(cloud, aws, {"n": 5, "sleep": 30})

    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert response["Body"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in response["Body"]["errorMessage"]
    after = _invoke(cloud, aws, {"n": 6})["Body"]["calls"]
    assert after <= before  # a new environment: the module state started over


def test_layer_is_on_the_python_path(cloud, aws, function):
    client = aws.client("lambda", endpoint_url=cloud.endpoint)
    layer = client.publish_layer_version(
        LayerName="helpers",
        Content={"ZipFile": _zip({"python/shared_helper.py": "def answer():\n    return {'from': 'layer'}\n"})},
        CompatibleRuntimes=["python3.12"],
    )["LayerVersionArn"]
    client.create_function(
        FunctionName="with-layer",
        Runtime="python3.12",
        Role=function,
        Handler="app.layered",
        Code={"ZipFile": _zip({"app.py": HANDLER})},
        Layers=[layer],
    )

    assert _invoke(cloud, aws, {}, name="with-layer")["Body"] == {"from": "layer"}


def test_event_invocations_run_in_the_background_and_are_counted(cloud, aws, function):
    before = lambda_runtime.invocations().get("probe", 0)
    response = aws.client("lambda", endpoint_url=cloud.endpoint).invoke(
        FunctionName="probe", InvocationType="Event", Payload=json.dumps({"n": 7})
    )

    assert response["StatusCode"] == 202
    deadline = time.monotonic() + 10
    while lambda_runtime.invocations().get("probe", 0) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lambda_runtime.invocations()["probe"] == before + 1


def test_cold_starts_errors_and_the_requests_of_scheduled_invocations_are_counted(cloud, aws, function):
    from emulator import metrics

    lambda_runtime.shutdown()  # every execution environment stopped: the next invocation starts cold
    before = {
        "cold": lambda_runtime.cold_starts().get("probe", 0),
        "errors": lambda_runtime.errors().get("probe", 0),
        "scheduled": metrics.scheduled_requests()["sns:ListTopics"],
        "all": metrics.requests()["sns:ListTopics"],
    }
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "n": 1, "list_topics": True}

    _invoke(cloud, aws, {"n": 1, "list_topics": True})  # cold, lists the topics
    _invoke(cloud, aws, scheduled)  # warm, lists the topics for a schedule
    _invoke(cloud, aws, {"n": 2, "raise": True})  # warm, fails before any request

    assert lambda_runtime.cold_starts()["probe"] - before["cold"] == 1
    assert lambda_runtime.errors()["probe"] - before["errors"] == 1
    assert metrics.requests()["sns:ListTopics"] - before["all"] == 2
    assert metrics.scheduled_requests()["sns:ListTopics"] - before["scheduled"] == 1
