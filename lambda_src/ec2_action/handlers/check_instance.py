"""check_instance (WaitForSsmOnline): is the build instance Online in Systems Manager yet?"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .. import aws, log
from ..errors import InstanceLost, InstanceNotReady

GONE_STATES = ("shutting-down", "terminated", "stopping", "stopped")


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    instance_id = event["instance_id"]
    log.reset(instance_id=instance_id)
    found = aws.client("ssm").describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])[
        "InstanceInformationList"
    ]
    if found and found[0].get("PingStatus") == "Online":
        info = found[0]
        log.info("instance online", platform=info.get("PlatformType"), agent=info.get("AgentVersion"))
        return {
            "ping_status": info["PingStatus"],
            "platform_type": info.get("PlatformType", ""),
            "agent_version": info.get("AgentVersion", ""),
        }
    ping = found[0].get("PingStatus") if found else "not registered"
    state, reason = _ec2_state(instance_id)
    if state in GONE_STATES:
        raise InstanceLost(f"instance {instance_id} is {state} ({reason or 'no reason given'})")
    raise InstanceNotReady(f"instance {instance_id} is {state}; Systems Manager status: {ping}")


def _ec2_state(instance_id: str) -> tuple[str, str]:
    try:
        reservations = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if aws.error_code(exc) == "InvalidInstanceID.NotFound":  # a new instance may not be visible yet
            return "not visible yet", ""
        raise
    instance = reservations[0]["Instances"][0]
    return instance["State"]["Name"], (instance.get("StateReason") or {}).get("Message", "")
