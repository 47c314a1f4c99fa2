"""Launching and starting build instances (acquire for a job, the keeper for a pool's minimum).

A launch tries each subnet in turn on capacity errors, starting at a place derived from the member (jobs spread, a
retry repeats its order), with a client token per member and subnet, so that a retried launch never makes a second
instance. Every instance is tagged with the stack, its pool (the action key whose cap it counts against) and its
member record. An ephemeral instance also carries its job's tags and shuts itself down after its deadline, the last
line of defence; a pool member outlives its builds, so it carries neither.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from . import aws, log, tags
from .config import ActionType, Config
from .errors import InstanceLaunchFailed, LaunchThrottled, NoCapacity
from .payloads import BuildSpec, Instance, Job
from .registry import Member

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
# EC2's answers to a request over the account's rate (its token buckets): botocore retried them already; the state
# machine retries the step with backoff (LaunchThrottled).
THROTTLING_ERRORS = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
# The orphan_grace_minutes variable's description states it (tests/test_shared_constants.py keeps them equal).
SHUTDOWN_GRACE_MINUTES = 30


# StartInstances' answers for an instance that cannot be started, whatever is retried: EC2 no longer knows it
# (terminated long ago), or it is not stopped (terminated or shutting down behind the pool's back, or stopping).
NOT_STARTABLE_ERRORS = frozenset({"InvalidInstanceID.NotFound", "IncorrectInstanceState"})


class CannotStart(Exception):
    """A stopped member's instance cannot be started: acquire terminates it (if it still exists) and launches a fresh
    instance into the member instead."""


class NoCapacityToStart(CannotStart):
    """StartInstances found no capacity for a stopped member."""


class NotStartable(CannotStart):
    """The stopped member's instance is gone or not stopped (NOT_STARTABLE_ERRORS)."""


def launch(
    config: Config,
    job: Job | None,
    build: BuildSpec,
    member: Member,
    pool_member: bool,
    action: ActionType | None = None,
) -> Instance:
    """Launch the member's instance in the first subnet with capacity; NoCapacity if none has any. `pool_member`:
    the instance outlives the build (no job tags, no self-shutdown; hibernation configured when the action's pool
    hibernates)."""
    lifetime_minutes = self_shutdown_minutes(build, config)
    deadline = datetime.now(UTC) + timedelta(minutes=lifetime_minutes)
    hibernate = bool(pool_member and action is not None and action.pool is not None and action.pool.hibernate)
    errors: list[str] = []
    for subnet_id in subnet_rotation(config.subnet_ids, job["id"] if job else member.id):
        request = run_request(config, job, build, member, pool_member, subnet_id, deadline, lifetime_minutes)
        if hibernate:
            request["HibernationOptions"] = {"Configured": True}
        try:
            instance: dict[str, Any] = aws.client("ec2").run_instances(**request)["Instances"][0]
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in THROTTLING_ERRORS:
                raise LaunchThrottled(f"RunInstances: {code}: {exc.response['Error'].get('Message', '')}") from exc
            if code not in CAPACITY_ERRORS:
                raise InstanceLaunchFailed(f"{code}: {exc.response['Error'].get('Message', '')}") from exc
            log.warning("no capacity in subnet", subnet_id=subnet_id, error=code)
            errors.append(f"{subnet_id} ({code})")
            continue
        log.info("instance launched", instance_id=instance["InstanceId"], subnet_id=subnet_id, member_id=member.id)
        return {
            "instance_id": instance["InstanceId"],
            "subnet_id": subnet_id,
            "launched_at": instance["LaunchTime"].astimezone(UTC).isoformat(),
            # This clock's reading when RunInstances returned: the registration wait measures from it.
            "launched_epoch": round(time.time(), 3),
        }
    raise NoCapacity(f"no capacity for instance type {build['instance_type']} in subnets {', '.join(errors)}")


def start(member: Member) -> Instance:
    """Start a stopped member's instance; NoCapacityToStart on a capacity error, NotStartable when the instance is
    gone or not stopped. The registration wait measures from this start (`launched_epoch`), `launched_at` stays the
    instance's first launch."""
    if not member.instance_id:
        raise ValueError(f"member {member.id} has no instance to start")
    try:
        aws.client("ec2").start_instances(InstanceIds=[member.instance_id])
    except ClientError as exc:
        code = aws.error_code(exc)
        why = f"{code}: {exc.response['Error'].get('Message', '')}"
        if code in THROTTLING_ERRORS:
            raise LaunchThrottled(f"StartInstances: {why}") from exc
        if code in CAPACITY_ERRORS:
            raise NoCapacityToStart(why) from exc
        if code in NOT_STARTABLE_ERRORS:
            raise NotStartable(why) from exc
        raise
    log.info("instance started", instance_id=member.instance_id, member_id=member.id)
    return {
        "instance_id": member.instance_id,
        "subnet_id": member.subnet_id or "",
        "launched_at": member.launched_at or "",
        "launched_epoch": round(time.time(), 3),
    }


def subnet_rotation(subnet_ids: tuple[str, ...], seed: str) -> list[str]:
    """Every subnet once, starting at a place derived from the seed (a job or member id): launches spread, a retry
    repeats its order."""
    start_at = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(subnet_ids)
    return list(subnet_ids[start_at:] + subnet_ids[:start_at])


def self_shutdown_minutes(build: BuildSpec, config: Config) -> int:
    """When an ephemeral instance shuts itself down: registration window + build timeout + a grace period."""
    seconds = config.ssm_registration_timeout_seconds + build["task_timeout_seconds"]
    return math.ceil(seconds / 60) + SHUTDOWN_GRACE_MINUTES


def user_data(platform: str, minutes: int) -> str:
    """The last line of defence: the instance shuts itself down (and terminates) after `minutes`.
    Plain text: botocore base64-encodes RunInstances' UserData."""
    if platform == "Windows":
        return f"<powershell>shutdown /s /t {minutes * 60}</powershell>\n"
    return f"#!/bin/bash\nshutdown -h +{minutes}\n"


def instance_tags(
    config: Config, job: Job | None, member: Member, deadline: datetime, pool_member: bool
) -> list[dict[str, str]]:
    """The stack's, the pool's and the member's tags; the job's (and its deadline) for an ephemeral instance."""
    values = {tags.STACK: config.stack, tags.POOL: member.pool, tags.MEMBER: member.id}
    if job is not None and not pool_member:
        pipeline = job["pipeline"]
        values.update(
            {
                tags.JOB_ID: job["id"],
                tags.PIPELINE: pipeline["name"],
                tags.PIPELINE_EXECUTION_ID: pipeline["execution_id"],
                tags.DEADLINE: deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
                tags.NAME: f"{config.stack}-{pipeline['name']}-{job['id'][:8]}"[:256],
            }
        )
    else:
        values[tags.NAME] = f"{config.stack}-{member.pool}-{member.id}"[:256]
    return [{"Key": key, "Value": value} for key, value in values.items()]


def client_token(member: Member, subnet_id: str) -> str:
    """Per member, subnet and instance generation: a retried launch reuses it (no second instance), a member that
    replaces its instance (a start without capacity) gets a new one."""
    return hashlib.sha256(f"{member.id}/{subnet_id}/{member.instance_id or ''}".encode()).hexdigest()[:64]


def run_request(
    config: Config,
    job: Job | None,
    build: BuildSpec,
    member: Member,
    pool_member: bool,
    subnet_id: str,
    deadline: datetime,
    lifetime_minutes: int,
) -> dict[str, Any]:
    """RunInstances' arguments for the member's instance in this subnet."""
    tag_list = instance_tags(config, job, member, deadline, pool_member)
    request: dict[str, Any] = {
        "LaunchTemplate": {"LaunchTemplateId": config.launch_template_id, "Version": config.launch_template_version},
        "ImageId": build["image_id"],
        "InstanceType": build["instance_type"],
        "MinCount": 1,
        "MaxCount": 1,
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "SubnetId": subnet_id,
                "Groups": list(config.security_group_ids),
                "AssociatePublicIpAddress": False,
                "DeleteOnTermination": True,
            }
        ],
        "BlockDeviceMappings": [
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
        "TagSpecifications": [
            {"ResourceType": kind, "Tags": tag_list} for kind in ("instance", "volume", "network-interface")
        ],
        "ClientToken": client_token(member, subnet_id),
    }
    if not pool_member:
        request["UserData"] = user_data(build["platform"], lifetime_minutes)
    return request
