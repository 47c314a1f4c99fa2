"""acquire (AcquireInstance): validate the job (buildspec: defaults, guardrails, the AMI), then launch its build
instance, tagged, trying each subnet in turn on capacity errors. One step, so that nothing waits between the two:
the state machine's input `job` comes back with its `build` spec and its `instance`."""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, buildspec, log, tags
from ..config import Config, load
from ..errors import InstanceLaunchFailed, NoCapacity
from ..payloads import BuildSpec, Instance, Job

CAPACITY_ERRORS = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "Unsupported",
        "InsufficientAddressCapacity",
        "InsufficientFreeAddressesInSubnet",
        "MaxSpotInstanceCountExceeded",
    }
)
# The orphan_grace_minutes variable's description states it (tests/test_shared_constants.py keeps them equal).
SHUTDOWN_GRACE_MINUTES = 30


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job: Job = event["job"]
    log.reset(job_id=job["id"], execution_arn=event.get("execution_arn"))
    config = load()
    build = buildspec.validated(config, job, context)
    return {"job": job, "build": build, "instance": launch(config, job, build)}


def launch(config: Config, job: Job, build: BuildSpec) -> Instance:
    """Launch the job's instance in the first subnet with capacity; NoCapacity if none has any."""
    lifetime_minutes = self_shutdown_minutes(build, config)
    deadline = datetime.now(UTC) + timedelta(minutes=lifetime_minutes)
    errors: list[str] = []
    for subnet_id in subnet_rotation(config.subnet_ids, job["id"]):
        try:
            instance = _launch(config, job, build, subnet_id, deadline, lifetime_minutes)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code not in CAPACITY_ERRORS:
                raise InstanceLaunchFailed(f"{code}: {exc.response['Error'].get('Message', '')}") from exc
            log.warning("no capacity in subnet", subnet_id=subnet_id, error=code)
            errors.append(f"{subnet_id} ({code})")
            continue
        log.info("instance launched", instance_id=instance["InstanceId"], subnet_id=subnet_id)
        return {
            "instance_id": instance["InstanceId"],
            "subnet_id": subnet_id,
            "launched_at": instance["LaunchTime"].astimezone(UTC).isoformat(),
            # This clock's reading when RunInstances returned: the registration wait measures from it.
            "launched_epoch": round(time.time(), 3),
        }
    raise NoCapacity(f"no capacity for instance type {build['instance_type']} in subnets {', '.join(errors)}")


def subnet_rotation(subnet_ids: tuple[str, ...], job_id: str) -> list[str]:
    """Every subnet once, starting at a place derived from the job id: jobs spread, a retry repeats its order."""
    start = int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % len(subnet_ids)
    return list(subnet_ids[start:] + subnet_ids[:start])


def self_shutdown_minutes(build: BuildSpec, config: Config) -> int:
    """When the instance shuts itself down: registration window + build timeout + a grace period."""
    seconds = config.ssm_registration_timeout_seconds + build["task_timeout_seconds"]
    return math.ceil(seconds / 60) + SHUTDOWN_GRACE_MINUTES


def user_data(platform: str, minutes: int) -> str:
    """The last line of defence: the instance shuts itself down (and terminates) after `minutes`.
    Plain text: botocore base64-encodes RunInstances' UserData."""
    if platform == "Windows":
        return f"<powershell>shutdown /s /t {minutes * 60}</powershell>\n"
    return f"#!/bin/bash\nshutdown -h +{minutes}\n"


def instance_tags(config: Config, job: Job, deadline: datetime) -> list[dict[str, str]]:
    pipeline = job["pipeline"]
    values = {
        tags.STACK: config.stack,
        tags.JOB_ID: job["id"],
        tags.PIPELINE: pipeline["name"],
        tags.PIPELINE_EXECUTION_ID: pipeline["execution_id"],
        tags.DEADLINE: deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
        tags.NAME: f"{config.stack}-{pipeline['name']}-{job['id'][:8]}"[:256],
    }
    return [{"Key": key, "Value": value} for key, value in values.items()]


def _launch(
    config: Config,
    job: Job,
    build: BuildSpec,
    subnet_id: str,
    deadline: datetime,
    lifetime_minutes: int,
) -> dict[str, Any]:
    tag_list = instance_tags(config, job, deadline)
    response = aws.client("ec2").run_instances(
        LaunchTemplate={"LaunchTemplateId": config.launch_template_id, "Version": "$Default"},
        ImageId=build["image_id"],
        InstanceType=build["instance_type"],
        MinCount=1,
        MaxCount=1,
        NetworkInterfaces=[
            {
                "DeviceIndex": 0,
                "SubnetId": subnet_id,
                "Groups": list(config.security_group_ids),
                "AssociatePublicIpAddress": False,
                "DeleteOnTermination": True,
            }
        ],
        BlockDeviceMappings=[
            {
                "DeviceName": build["root_device_name"],
                "Ebs": {
                    "VolumeSize": build["root_volume_gib"],
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        TagSpecifications=[
            {"ResourceType": kind, "Tags": tag_list} for kind in ("instance", "volume", "network-interface")
        ],
        UserData=user_data(build["platform"], lifetime_minutes),
        ClientToken=hashlib.sha256(f"{job['id']}/{subnet_id}".encode()).hexdigest()[:64],
    )
    instance: dict[str, Any] = response["Instances"][0]
    return instance
