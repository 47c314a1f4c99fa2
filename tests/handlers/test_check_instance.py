"""The paths that need no SSM agent: moto has no DescribeInstanceInformation, so its answer is injected."""

from typing import Any

import pytest
from conftest import Cloud

from ec2_action import aws
from ec2_action.errors import InstanceLost, InstanceNotReady
from ec2_action.handlers import check_instance


def ssm_knows(instances: list[dict[str, Any]]) -> None:
    """Answer DescribeInstanceInformation with these entries (what Systems Manager would have registered)."""

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return type("Http", (), {"status_code": 200})(), {"InstanceInformationList": instances}

    aws.client("ssm").meta.events.register("before-call.ssm.DescribeInstanceInformation", answer)


def launch(cloud: Cloud) -> str:
    return cloud.client("ec2").run_instances(ImageId=cloud.linux_ami, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]


def test_running_but_unregistered_instance_is_not_ready(cloud: Cloud) -> None:
    instance_id = launch(cloud)
    ssm_knows([])
    with pytest.raises(InstanceNotReady, match=rf"instance {instance_id} is running; Systems Manager status: not reg"):
        check_instance.handler({"instance_id": instance_id}, cloud.context)


def test_connection_lost_is_not_ready(cloud: Cloud) -> None:
    instance_id = launch(cloud)
    ssm_knows([{"InstanceId": instance_id, "PingStatus": "ConnectionLost"}])
    with pytest.raises(InstanceNotReady, match=r"ConnectionLost"):
        check_instance.handler({"instance_id": instance_id}, cloud.context)


@pytest.mark.parametrize("action", ["terminate_instances", "stop_instances"])
def test_terminated_or_stopped_instance_is_lost(cloud: Cloud, action: str) -> None:
    instance_id = launch(cloud)
    getattr(cloud.client("ec2"), action)(InstanceIds=[instance_id])
    ssm_knows([])
    with pytest.raises(InstanceLost, match=rf"instance {instance_id} is (terminated|stopped|stopping) \(.+\)"):
        check_instance.handler({"instance_id": instance_id}, cloud.context)


def test_online_instance_reports_platform_and_agent(cloud: Cloud) -> None:
    instance_id = launch(cloud)
    ssm_knows([{"InstanceId": instance_id, "PingStatus": "Online", "PlatformType": "Linux", "AgentVersion": "3.3.1"}])
    assert check_instance.handler({"instance_id": instance_id}, cloud.context) == {
        "ping_status": "Online",
        "platform_type": "Linux",
        "agent_version": "3.3.1",
    }
