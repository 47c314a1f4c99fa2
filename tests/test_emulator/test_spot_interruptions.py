"""EC2's events and Spot interruptions in the local cloud: every instance state change announced in order through
EventBridge with AWS's shape, the interruption warning then EC2's termination two (scaled) minutes later, lost
warnings, rebalance recommendations and interruptions drawn at random."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator import events, faults, server

SCALE = 0.05  # 20 AWS seconds last 1 s
NOTICE = 20  # AWS seconds of notice in these tests (AWS gives 120)
STATE_CHANGE = "EC2 Instance State-change Notification"
WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALCLOUD_TIME_SCALE", str(SCALE))
        patch.setenv("LOCALCLOUD_START_DELAY_SECONDS", "20")
        patch.setenv("LOCALCLOUD_STOP_DELAY_SECONDS", "20")
        patch.delenv("MOTO_IAM_LOAD_MANAGED_POLICIES", raising=False)
        cloud = server.start()
        yield cloud
        cloud.stop()


@pytest.fixture(scope="module")
def aws(cloud: server.LocalCloud) -> dict[str, Any]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)
    clients = {name: session.client(name, endpoint_url=cloud.endpoint) for name in ("ec2", "events", "sqs")}
    ec2 = clients["ec2"]
    clients["image"] = ec2.register_image(Name="builder", RootDeviceName="/dev/xvda")["ImageId"]
    clients["subnet"] = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    clients["template"] = ec2.create_launch_template(
        LaunchTemplateName="builder", LaunchTemplateData={"ImageId": clients["image"]}
    )["LaunchTemplate"]["LaunchTemplateId"]
    return clients


@pytest.fixture(autouse=True)
def no_faults_left() -> Iterator[None]:
    yield
    faults.clear()


@pytest.fixture
def received(aws: dict[str, Any], request: pytest.FixtureRequest) -> Callable[[], list[dict[str, Any]]]:
    """A rule for EC2's events (as the module's interruption rules are) delivering to a queue: the events it got."""
    name = request.node.name[:60]
    queue = aws["sqs"].create_queue(QueueName=name)["QueueUrl"]
    queue_arn = aws["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.ec2"], "detail-type": [STATE_CHANGE, WARNING, REBALANCE]}
    aws["events"].put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    aws["events"].put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    yield lambda: [delivery.payload for delivery in events.deliveries(queue_arn)]
    aws["events"].remove_targets(Rule=name, Ids=["queue"])
    aws["events"].delete_rule(Name=name)


def _spot(aws: dict[str, Any]) -> str:
    answer = aws["ec2"].create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": aws["template"], "Version": "1"},
                "Overrides": [{"InstanceType": "m5.large", "SubnetId": aws["subnet"]}],
            }
        ],
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "spot"},
        SpotOptions={"AllocationStrategy": "price-capacity-optimized"},
    )
    return answer["Instances"][0]["InstanceIds"][0]


def _on_demand(aws: dict[str, Any]) -> str:
    answer = aws["ec2"].run_instances(ImageId=aws["image"], MinCount=1, MaxCount=1, SubnetId=aws["subnet"])
    return answer["Instances"][0]["InstanceId"]


def _described(aws: dict[str, Any], instance_id: str) -> dict[str, Any]:
    return aws["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _wait(condition: Callable[[], Any], seconds: float = 10, what: str = "the condition") -> Any:
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def _states(seen: list[dict[str, Any]], instance_id: str) -> list[str]:
    return [e["detail"]["state"] for e in seen if e["detail-type"] == STATE_CHANGE and e["resources"][0].endswith(
        instance_id)]  # fmt: skip


def test_every_state_change_is_announced_in_order_with_awss_event_shape(aws, received) -> None:
    ec2 = aws["ec2"]
    instance_id = _on_demand(aws)
    ec2.stop_instances(InstanceIds=[instance_id])
    _wait(lambda: _described(aws, instance_id)["State"]["Name"] == "stopped", what="stopped")
    ec2.start_instances(InstanceIds=[instance_id])
    _wait(lambda: _described(aws, instance_id)["State"]["Name"] == "running", what="running")
    ec2.terminate_instances(InstanceIds=[instance_id])

    seen = _wait(lambda: len(_states(received(), instance_id)) == 8 and received(), what="eight state changes")
    assert _states(seen, instance_id) == [
        "pending", "running", "stopping", "stopped", "pending", "running", "shutting-down", "terminated"
    ]  # fmt: skip
    event = seen[-1]
    assert event["source"] == "aws.ec2" and event["detail-type"] == STATE_CHANGE
    assert event["detail"] == {"instance-id": instance_id, "state": "terminated"}
    assert event["resources"] == [f"arn:aws:ec2:{event['region']}:{event['account']}:instance/{instance_id}"]
    assert {"version", "id", "time", "account", "region"} <= set(event)


def test_events_reach_only_the_rules_that_match_them(aws, received) -> None:
    other = aws["sqs"].create_queue(QueueName="other-source")["QueueUrl"]
    other_arn = aws["sqs"].get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["events"].put_rule(Name="other-source", EventPattern=json.dumps({"source": ["aws.ssm"]}), State="ENABLED")
    aws["events"].put_targets(Rule="other-source", Targets=[{"Id": "queue", "Arn": other_arn}])

    instance_id = _on_demand(aws)

    _wait(lambda: _states(received(), instance_id) == ["pending", "running"], what="the launch's events")
    assert events.deliveries(other_arn) == []


def test_an_interruption_warns_then_ec2_terminates_the_instance_after_the_notice(aws, received) -> None:
    instance_id = _spot(aws)
    started = time.monotonic()

    faults.interrupt_spot(instance_id, notice_seconds=NOTICE)

    warning = [e for e in received() if e["detail-type"] == WARNING]
    assert [e["detail"] for e in warning] == [{"instance-id": instance_id, "instance-action": "terminate"}]
    assert warning[0]["source"] == "aws.ec2" and warning[0]["resources"][0].endswith(f":instance/{instance_id}")
    assert _described(aws, instance_id)["State"]["Name"] == "running"  # the notice runs
    _wait(lambda: _described(aws, instance_id)["State"]["Name"] == "terminated", what="the termination")
    assert time.monotonic() - started >= NOTICE * SCALE
    instance = _described(aws, instance_id)
    assert instance["StateReason"] == {
        "Code": "Server.SpotInstanceTermination",
        "Message": "Server.SpotInstanceTermination: Spot instance termination",
    }
    seen = _wait(lambda: "terminated" in _states(received(), instance_id) and received(), what="terminated event")
    assert _states(seen, instance_id)[-2:] == ["shutting-down", "terminated"]
    kinds = [e["detail-type"] for e in seen if e["detail"]["instance-id"] == instance_id]
    assert kinds.index(WARNING) < kinds.index(STATE_CHANGE, kinds.index(WARNING))  # the warning comes first


def test_a_lost_warning_leaves_only_the_termination(aws, received) -> None:
    instance_id = _spot(aws)

    faults.interrupt_spot(instance_id, warning=False, notice_seconds=0)

    assert _described(aws, instance_id)["State"]["Name"] == "terminated"
    seen = received()
    assert [e for e in seen if e["detail-type"] == WARNING] == []
    assert _states(seen, instance_id)[-2:] == ["shutting-down", "terminated"]


def test_only_spot_instances_are_interrupted(aws) -> None:
    instance_id = _on_demand(aws)

    with pytest.raises(ValueError, match="not a Spot Instance"):
        faults.interrupt_spot(instance_id)
    with pytest.raises(ValueError, match="not a Spot Instance"):
        faults.rebalance_recommendation(instance_id)


def test_a_rebalance_recommendation_is_an_event_and_nothing_more(aws, received) -> None:
    instance_id = _spot(aws)

    faults.rebalance_recommendation(instance_id)

    assert [(e["detail-type"], e["detail"]) for e in received() if e["detail-type"] == REBALANCE] == [
        (REBALANCE, {"instance-id": instance_id})
    ]
    assert _described(aws, instance_id)["State"]["Name"] == "running"


def test_drawn_interruptions_hit_spot_launches_at_the_rate_in_the_window(aws, received) -> None:
    faults.spot_interruptions(rate=1.0, seed=7, after_seconds=(0, 10))
    hit = _spot(aws)
    spared = _on_demand(aws)  # on-demand instances are never interrupted
    _wait(lambda: _described(aws, hit)["State"]["Name"] == "terminated", seconds=15, what="the drawn interruption")
    assert [e["detail"]["instance-id"] for e in received() if e["detail-type"] == WARNING] == [hit]
    assert _described(aws, spared)["State"]["Name"] == "running"

    faults.spot_interruptions(rate=0.0, seed=7, after_seconds=(0, 0))  # a hit would warn at launch
    kept = _spot(aws)
    assert [e for e in received() if e["detail-type"] == WARNING and e["detail"]["instance-id"] == kept] == []


def test_clearing_faults_cancels_an_interruption_still_on_notice(aws) -> None:
    instance_id = _spot(aws)
    faults.interrupt_spot(instance_id, notice_seconds=10)

    faults.clear()

    time.sleep(10 * SCALE + 0.5)
    assert _described(aws, instance_id)["State"]["Name"] == "running"


def test_a_spot_instance_cannot_be_stopped_and_one_already_terminated_is_not_interrupted(aws, received) -> None:
    instance_id = _spot(aws)

    with pytest.raises(ClientError) as refused:
        aws["ec2"].stop_instances(InstanceIds=[instance_id])
    assert refused.value.response["Error"]["Code"] == "UnsupportedOperation"
    assert "one-time Spot Instance request" in refused.value.response["Error"]["Message"]
    aws["ec2"].terminate_instances(InstanceIds=[instance_id])

    faults.interrupt_spot(instance_id, notice_seconds=0)

    assert [e for e in received() if e["detail-type"] == WARNING] == []
    reason = _described(aws, instance_id)["StateReason"]["Code"]
    assert reason == "Client.UserInitiatedShutdown"  # its user terminated it, not EC2
