"""EC2 in the local cloud: moto's fidelity fixes, and the instance lifecycle (stop, hibernate, start, capacity)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import faults, patches, server


def test_a_launch_templates_own_tags_stay_out_of_its_data() -> None:
    patches.apply()
    with mock_aws():
        client = boto3.client("ec2", region_name="us-east-1")
        client.create_launch_template(
            LaunchTemplateName="builder",
            LaunchTemplateData={
                "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "builder"}]}]
            },
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "Stack", "Value": "demo"}]}],
        )

        [version] = client.describe_launch_template_versions(LaunchTemplateName="builder")["LaunchTemplateVersions"]
        [template] = client.describe_launch_templates(LaunchTemplateNames=["builder"])["LaunchTemplates"]

    assert version["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "builder"}]}
    ]
    assert template["Tags"] == [{"Key": "Stack", "Value": "demo"}]


# -- the instance lifecycle, over HTTP --------------------------------------------------------------------------------

LINUX_AMI = "ami-1e749f67"  # one of moto's built-in AMIs
SCALE = 0.05  # AWS seconds last 1/20 here
START_DELAY, STOP_DELAY = 20, 20  # AWS seconds: 1 s each here


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALCLOUD_TIME_SCALE", str(SCALE))
        patch.setenv("LOCALCLOUD_START_DELAY_SECONDS", str(START_DELAY))
        patch.setenv("LOCALCLOUD_STOP_DELAY_SECONDS", str(STOP_DELAY))
        cloud = server.start()
        yield cloud
        cloud.stop()


@pytest.fixture(autouse=True)
def no_faults_left() -> Iterator[None]:
    yield
    faults.clear()


def _client(cloud: server.LocalCloud, attempts: int = 1) -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return session.client("ec2", endpoint_url=cloud.endpoint, config=config)


@pytest.fixture
def ec2(cloud: server.LocalCloud) -> Any:
    return _client(cloud)


def _launch(ec2: Any, **extra: Any) -> str:
    reservation = ec2.run_instances(ImageId=LINUX_AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", **extra)
    return reservation["Instances"][0]["InstanceId"]


def _described(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _state(ec2: Any, instance_id: str) -> str:
    return _described(ec2, instance_id)["State"]["Name"]


def _wait_for(ec2: Any, instance_id: str, state: str, seconds: float = 10) -> float:
    """Real seconds until the instance is in `state`."""
    began = time.monotonic()
    while _state(ec2, instance_id) != state:
        assert time.monotonic() - began < seconds, f"{instance_id} never became {state}"
        time.sleep(0.02)
    return time.monotonic() - began


def _stopped(ec2: Any, **extra: Any) -> str:
    instance_id = _launch(ec2, **extra)
    ec2.stop_instances(InstanceIds=[instance_id])
    _wait_for(ec2, instance_id, "stopped")
    return instance_id


def _change(answer: dict[str, Any], key: str) -> tuple[str, str]:
    [change] = answer[key]
    return change["PreviousState"]["Name"], change["CurrentState"]["Name"]


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_stop_walks_through_stopping_to_stopped_in_aws_time(ec2: Any) -> None:
    instance_id = _launch(ec2)

    began = time.monotonic()
    assert _change(ec2.stop_instances(InstanceIds=[instance_id]), "StoppingInstances") == ("running", "stopping")
    assert _state(ec2, instance_id) == "stopping"
    _wait_for(ec2, instance_id, "stopped")

    assert time.monotonic() - began >= 0.9 * STOP_DELAY * SCALE
    assert _described(ec2, instance_id)["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    # Stopping a stopped instance changes nothing and says so.
    assert _change(ec2.stop_instances(InstanceIds=[instance_id]), "StoppingInstances") == ("stopped", "stopped")


def test_start_walks_through_pending_to_running_and_refuses_a_stopping_instance(ec2: Any) -> None:
    instance_id = _launch(ec2)
    ec2.stop_instances(InstanceIds=[instance_id])

    with pytest.raises(ClientError) as stopping:
        ec2.start_instances(InstanceIds=[instance_id])
    assert _error(stopping) == (
        "IncorrectInstanceState",
        f"The instance '{instance_id}' is not in a state from which it can be started.",
        400,
    )

    _wait_for(ec2, instance_id, "stopped")
    began = time.monotonic()
    assert _change(ec2.start_instances(InstanceIds=[instance_id]), "StartingInstances") == ("stopped", "pending")
    assert _change(ec2.start_instances(InstanceIds=[instance_id]), "StartingInstances") == ("pending", "pending")
    with pytest.raises(ClientError) as pending:
        ec2.stop_instances(InstanceIds=[instance_id])
    assert _error(pending)[0] == "IncorrectInstanceState"
    _wait_for(ec2, instance_id, "running")

    assert time.monotonic() - began >= 0.9 * START_DELAY * SCALE
    assert _change(ec2.start_instances(InstanceIds=[instance_id]), "StartingInstances") == ("running", "running")


def test_a_terminated_instance_cannot_be_started_or_stopped_and_the_whole_request_fails(ec2: Any) -> None:
    stopped, gone = _stopped(ec2), _launch(ec2)
    ec2.terminate_instances(InstanceIds=[gone])

    with pytest.raises(ClientError) as start:
        ec2.start_instances(InstanceIds=[stopped, gone])
    with pytest.raises(ClientError) as stop:
        ec2.stop_instances(InstanceIds=[gone])

    assert _error(start)[:2] == (
        "IncorrectInstanceState",
        f"The instance '{gone}' is not in a state from which it can be started.",
    )
    assert _error(stop)[:2] == (
        "IncorrectInstanceState",
        f"This instance '{gone}' is not in a state from which it can be stopped.",
    )
    assert _state(ec2, stopped) == "stopped", "a refused request changes no instance"


def test_terminating_a_terminated_instance_again_succeeds_and_answers_terminated(ec2: Any) -> None:
    """TerminateInstances is idempotent in EC2: release, the keeper and the reaper may each terminate one instance
    (moto terminated it again and failed on its network interface, deleted with it the first time); a request naming
    a terminated and a running instance terminates the running one."""
    subnet_id = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    interface = [{"DeviceIndex": 0, "SubnetId": subnet_id, "DeleteOnTermination": True}]
    gone, running = _launch(ec2, NetworkInterfaces=interface), _launch(ec2, NetworkInterfaces=interface)
    first = ec2.terminate_instances(InstanceIds=[gone])

    again = ec2.terminate_instances(InstanceIds=[gone, running])["TerminatingInstances"]

    assert _change(first, "TerminatingInstances") == ("running", "shutting-down")
    assert {change["InstanceId"]: (change["PreviousState"], change["CurrentState"]) for change in again} == {
        gone: ({"Code": 48, "Name": "terminated"}, {"Code": 48, "Name": "terminated"}),
        running: ({"Code": 16, "Name": "running"}, {"Code": 32, "Name": "shutting-down"}),
    }
    assert _state(ec2, gone) == _state(ec2, running) == "terminated"
    with pytest.raises(ClientError) as unknown:
        ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"])
    assert _error(unknown)[0] == "InvalidInstanceID.NotFound"


def test_hibernate_needs_hibernation_configured_at_launch(ec2: Any) -> None:
    plain = _launch(ec2)
    configured = _launch(ec2, HibernationOptions={"Configured": True})
    ec2.create_launch_template(
        LaunchTemplateName="hibernating", LaunchTemplateData={"HibernationOptions": {"Configured": True}}
    )
    from_template = _launch(ec2, LaunchTemplate={"LaunchTemplateName": "hibernating"})

    with pytest.raises(ClientError) as refused:
        ec2.stop_instances(InstanceIds=[plain], Hibernate=True)
    hibernating = ec2.stop_instances(InstanceIds=[configured, from_template], Hibernate=True)["StoppingInstances"]

    code, message, status = _error(refused)
    assert (code, status) == ("UnsupportedHibernationConfiguration", 400)
    assert message.endswith(plain)
    assert _state(ec2, plain) == "running"
    assert [change["CurrentState"]["Name"] for change in hibernating] == ["stopping", "stopping"]
    assert _described(ec2, from_template)["HibernationOptions"] == {"Configured": True}
    _wait_for(ec2, configured, "stopped")
    assert _described(ec2, configured)["StateReason"]["Code"] == "Client.UserInitiatedHibernate"
    # A hibernated instance starts like a stopped one.
    assert _change(ec2.start_instances(InstanceIds=[configured]), "StartingInstances") == ("stopped", "pending")


def test_no_capacity_to_start_chosen_instances_is_a_server_error_naming_type_and_zone(ec2: Any) -> None:
    unlucky, lucky = _stopped(ec2), _stopped(ec2)
    faults.no_capacity_to_start(lambda instance: instance.id == unlucky)

    with pytest.raises(ClientError) as refused:
        ec2.start_instances(InstanceIds=[unlucky])
    started = ec2.start_instances(InstanceIds=[lucky])

    code, message, status = _error(refused)
    assert (code, status) == ("InsufficientInstanceCapacity", 500)
    assert message.startswith(
        "We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a)."
    )
    assert _state(ec2, unlucky) == "stopped"
    assert _change(started, "StartingInstances") == ("stopped", "pending")
    faults.clear()
    assert _change(ec2.start_instances(InstanceIds=[unlucky]), "StartingInstances") == ("stopped", "pending")


def test_the_next_start_fails_for_capacity_and_an_sdk_retry_gets_it(cloud: server.LocalCloud, ec2: Any) -> None:
    first, second = _stopped(ec2), _stopped(ec2)
    faults.no_capacity_to_start(count=1)

    with pytest.raises(ClientError) as refused:
        ec2.start_instances(InstanceIds=[first])
    faults.no_capacity_to_start(count=1)
    retried = _client(cloud, attempts=3).start_instances(InstanceIds=[second])

    assert _error(refused)[0] == "InsufficientInstanceCapacity"
    assert _change(retried, "StartingInstances") == ("stopped", "pending")
    assert retried["ResponseMetadata"]["RetryAttempts"] == 1, "botocore retries a 500 once it has failed"
    assert _change(ec2.start_instances(InstanceIds=[first]), "StartingInstances") == ("stopped", "pending")


def test_with_no_delay_the_walk_ends_before_the_answer(ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALCLOUD_STOP_DELAY_SECONDS", "0")
    monkeypatch.setenv("LOCALCLOUD_START_DELAY_SECONDS", "0")
    instance_id = _launch(ec2)

    stopping = _change(ec2.stop_instances(InstanceIds=[instance_id]), "StoppingInstances")
    stopped = _state(ec2, instance_id)
    pending = _change(ec2.start_instances(InstanceIds=[instance_id]), "StartingInstances")
    running = _state(ec2, instance_id)

    assert (stopping, stopped, pending, running) == (
        ("running", "stopping"),
        "stopped",
        ("stopped", "pending"),
        "running",
    )
