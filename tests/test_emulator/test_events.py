"""The local cloud's EventBridge: enabled rules only, Lambda and Step Functions targets, rate schedules."""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import lambda_simple_backends

from emulator import events, faults, patches
from emulator.events import scheduler

REGION = "us-east-1"
ACCOUNT = "123456789012"
PATTERN = json.dumps({"source": ["my.app"], "detail-type": ["Thing Happened"]})


@pytest.fixture(autouse=True)
def no_managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here needs AWS managed policies; loading them (emulator.server turns it on) costs seconds per reset."""
    monkeypatch.delenv("MOTO_IAM_LOAD_MANAGED_POLICIES", raising=False)


@pytest.fixture(autouse=True)
def recorded() -> Iterator[None]:
    patches.apply()
    scheduler.start()
    events.clear_deliveries()
    yield
    events.clear_deliveries()


@pytest.fixture
def eventbridge() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("events", region_name=REGION)


def make_queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def received(queue_url: str, wait: float = 0.0) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    deadline = time.monotonic() + wait
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if messages or time.monotonic() >= deadline:
            return [json.loads(m["Body"]) for m in messages]
        time.sleep(0.05)


def emit(state: str = "STARTED", source: str = "my.app") -> str | None:
    return events.emit(source, "Thing Happened", {"state": state}, ACCOUNT, REGION, resources=["arn:thing"])


def finished_deliveries(target_arn: str, count: int) -> list[events.Delivery]:
    deadline = time.monotonic() + 5
    while len(events.deliveries(target_arn)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    found = events.deliveries(target_arn)
    assert len(found) == count, found
    for delivery in found:
        assert delivery.finished.wait(5)
    return found


def test_enabled_rule_delivers_matching_events_only(eventbridge: Any) -> None:
    url, arn = make_queue("things")
    eventbridge.put_rule(Name="things", EventPattern=PATTERN)
    eventbridge.put_targets(Rule="things", Targets=[{"Id": "q", "Arn": arn}])

    assert emit()
    emit(source="other.app")

    [event] = received(url)
    assert (event["source"], event["detail-type"], event["detail"]) == (
        "my.app",
        "Thing Happened",
        {"state": "STARTED"},
    )
    assert event["resources"] == ["arn:thing"] and event["account"] == ACCOUNT and event["time"].endswith("Z")
    [delivery] = events.deliveries(arn)
    assert delivery.payload["detail"] == {"state": "STARTED"} and delivery.error is None


def test_disabled_rule_delivers_nothing(eventbridge: Any) -> None:
    url, arn = make_queue("things")
    eventbridge.put_rule(Name="things", EventPattern=PATTERN, State="DISABLED")
    eventbridge.put_targets(Rule="things", Targets=[{"Id": "q", "Arn": arn}])

    emit()
    assert received(url) == [] and events.deliveries() == []

    eventbridge.enable_rule(Name="things")
    emit()
    assert len(received(url)) == 1


def test_dropped_events_never_reach_the_bus(eventbridge: Any) -> None:
    url, arn = make_queue("things")
    eventbridge.put_rule(Name="things", EventPattern=PATTERN)
    eventbridge.put_targets(Rule="things", Targets=[{"Id": "q", "Arn": arn}])
    faults.drop_events("Thing Happened", count=1, match=lambda detail: detail["state"] == "STARTED")
    try:
        emit(state="SUCCEEDED")  # not matched: delivered
        assert emit() is None  # lost
        emit()  # the budget is spent: delivered
    finally:
        faults.clear()

    assert [event["detail"]["state"] for event in received(url, wait=1)] == ["SUCCEEDED", "STARTED"]


def test_lambda_targets_are_invoked_asynchronously_with_their_input() -> None:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        eventbridge = boto3.client("events", region_name=REGION)
        function_arn = create_function("on-thing")
        eventbridge.put_rule(Name="things", EventPattern=PATTERN)
        transformer = {"InputPathsMap": {"state": "$.detail.state"}, "InputTemplate": '{"seen": "<state>"}'}
        eventbridge.put_targets(
            Rule="things",
            Targets=[
                {"Id": "whole", "Arn": function_arn},
                {"Id": "transformed", "Arn": function_arn, "InputTransformer": transformer},
                {"Id": "constant", "Arn": function_arn, "Input": '{"fixed": 1}'},
                {"Id": "path", "Arn": function_arn, "InputPath": "$.detail"},
            ],
        )
        queue = lambda_simple_backends[ACCOUNT][REGION].lambda_simple_results_queue
        queue.extend(["r1", "r2", "r3", "r4"])

        event_id = emit()

        deliveries = {d.target_id: d for d in finished_deliveries(function_arn, 4)}
        assert queue == []  # the Lambda backend's invoke ran once per target
        whole = deliveries["whole"].payload
        assert whole["id"] == event_id and whole["account"] == ACCOUNT and whole["time"].endswith("Z")
        assert "ingestion-time" not in whole
        assert deliveries["transformed"].payload == {"seen": "STARTED"}
        assert deliveries["constant"].payload == {"fixed": 1}
        assert deliveries["path"].payload == {"state": "STARTED"}
        assert all(d.error is None for d in deliveries.values())


def create_function(name: str) -> str:
    iam = boto3.client("iam", region_name=REGION)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": buffer.getvalue()}
    )["FunctionArn"]


def test_step_functions_target_starts_an_execution(eventbridge: Any) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    role = "arn:aws:iam::123456789012:role/sfn"
    machine_arn = sfn.create_state_machine(name="on-thing", definition=definition, roleArn=role)["stateMachineArn"]
    eventbridge.put_rule(Name="things", EventPattern=PATTERN)
    eventbridge.put_targets(Rule="things", Targets=[{"Id": "sfn", "Arn": machine_arn, "RoleArn": role}])

    event_id = emit()

    [delivery] = finished_deliveries(machine_arn, 1)
    assert delivery.error is None
    [execution] = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["id"] == event_id and started["detail"] == {"state": "STARTED"}


def test_a_failing_target_is_recorded_and_logged(eventbridge: Any, caplog: pytest.LogCaptureFixture) -> None:
    missing = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:missing"
    eventbridge.put_rule(Name="things", EventPattern=PATTERN)
    eventbridge.put_targets(Rule="things", Targets=[{"Id": "gone", "Arn": missing}])

    assert emit()

    [delivery] = finished_deliveries(missing, 1)
    assert delivery.error and "missing" in delivery.error
    assert any("delivery to" in r.getMessage() for r in caplog.records)


def test_rate_rule_fires_scheduled_events(eventbridge: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALCLOUD_TIME_SCALE", "0.01")  # rate(1 minute) -> the 1 s minimum period
    url, arn = make_queue("ticks")
    rule_arn = eventbridge.put_rule(Name="sweep", ScheduleExpression="rate(1 minute)")["RuleArn"]
    eventbridge.put_targets(Rule="sweep", Targets=[{"Id": "q", "Arn": arn}])
    idle_url, idle_arn = make_queue("idle")
    eventbridge.put_rule(Name="off", ScheduleExpression="rate(1 minute)", State="DISABLED")
    eventbridge.put_targets(Rule="off", Targets=[{"Id": "q", "Arn": idle_arn}])
    emit()  # put events never reach a schedule-only rule

    [event] = received(url, wait=3)
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    assert event["resources"] == [rule_arn] and event["detail"] == {}
    assert received(idle_url) == []


def test_cron_schedules_are_logged_and_not_fired(eventbridge: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="emulator.events")
    url, arn = make_queue("cron")
    eventbridge.put_rule(Name="nightly", ScheduleExpression="cron(0 3 * * ? *)")
    eventbridge.put_targets(Rule="nightly", Targets=[{"Id": "q", "Arn": arn}])

    time.sleep(3 * scheduler.SCHEDULER_TICK_SECONDS)

    assert [r.getMessage() for r in caplog.records if "not emulated" in r.getMessage()] != []
    assert received(url) == []


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert events.rate_seconds(expression) == seconds
    assert events.rate_seconds("cron(0 3 * * ? *)") is None
