"""Launching and starting build instances (acquire for a job, the keeper for a pool's minimum).

A launch is one EC2 Fleet request (CreateFleet, type instant) per purchase option: its overrides are the build's
instance types (in order of preference) times the subnets (starting at a place derived from the job or member: jobs
spread, a retry repeats its order), so that EC2 moves from a pool without capacity to the next itself. A spot launch
that finds no spot capacity anywhere asks for on-demand at once when the action allows it. The client token is per
member, instance generation and lifecycle (and failed launches), so that a retried launch never makes a second
instance. Every instance is tagged with the stack, its pool (the action key whose cap it counts against) and its
member record. An ephemeral instance also carries its job's tags, among them its deadline, from which its launch
template's user data shuts it down, the last line of defence; a pool member outlives its builds, so it carries
neither.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from . import aws, log, metrics, registry, tags
from .config import ActionType, Config
from .errors import InstanceLaunchFailed, LaunchThrottled, NoCapacity
from .payloads import BuildSpec, Instance, Job
from .registry import Member

SPOT: Literal["spot"] = "spot"
ON_DEMAND: Literal["on-demand"] = "on-demand"

CAPACITY_ERRORS = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "Unsupported",
        "InsufficientAddressCapacity",
        "InsufficientFreeAddressesInSubnet",
        "MaxSpotInstanceCountExceeded",
        "UnfulfillableCapacity",
        "InsufficientHostCapacity",
        "SpotMaxPriceTooLow",
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
    """StartInstances found no capacity for a stopped member; `code` is EC2's error code."""

    def __init__(self, why: str, code: str) -> None:
        super().__init__(why)
        self.code = code


class NotStartable(CannotStart):
    """The stopped member's instance is gone or not stopped (NOT_STARTABLE_ERRORS)."""


def purchase_for(action: ActionType, interruptions: int) -> str:
    """How a build's instance is bought after `interruptions` spot interruptions: on-demand for an on-demand action
    or once the action's interruption budget is spent, else the action's option (spot, spot-then-on-demand)."""
    if action.purchase_option == ON_DEMAND or interruptions >= action.interruptions_before_on_demand:
        return ON_DEMAND
    return action.purchase_option


@dataclass(frozen=True)
class PoolTried:
    """One pool (instance type, subnet, lifecycle) a launch asked for, and EC2's error for it if it reported one."""

    instance_type: str
    subnet_id: str
    lifecycle: str
    code: str = ""
    message: str = ""
    zone: str = ""  # the pool's Availability Zone when EC2's answer names it (else the configuration's for the subnet)

    def describe(self, with_lifecycle: bool) -> str:
        """The pool and why it gave no instance: EC2's first sentence only (its capacity errors go on to suggest other
        zones), so that a launch over 20 types in every subnet still fits in the job's failure."""
        prefix = f"{self.lifecycle} " if with_lifecycle else ""
        first_sentence = self.message.split(". ")[0].rstrip(".")
        why = f"{self.code}: {first_sentence}" if self.code else "no instance, no error reported"
        return f"{prefix}{self.instance_type} in {self.subnet_id} ({why})"


def launch(
    config: Config,
    job: Job | None,
    build: BuildSpec,
    member: Member,
    pool_member: bool,
    action: ActionType,
    purchase: str = ON_DEMAND,
) -> Instance:
    """Launch the member's instance in the first pool (instance type x subnet) with capacity, bought as `purchase`
    (purchase_for); NoCapacity naming every pool tried when none has any, LaunchThrottled when EC2 throttled it,
    InstanceLaunchFailed for anything else. `pool_member`: the instance outlives the build (no job tags; hibernation
    configured when the action's pool hibernates)."""
    deadline = datetime.now(UTC) + timedelta(minutes=self_shutdown_minutes(build, config))
    if pool_member and action.pool is not None and action.pool.hibernate:
        return _launch_hibernating(config, action, build, member, deadline)
    lifecycles = [SPOT, ON_DEMAND] if purchase == "spot-then-on-demand" else [purchase]
    tried: list[PoolTried] = []
    answered = False  # EC2 answered a request: its client token now stands for that answer
    try:
        for lifecycle in lifecycles:
            request = fleet_request(config, job, build, member, pool_member, action, lifecycle, deadline)
            answer = _create_fleet(request)
            answered = True
            instance = _fleet_instance(answer)
            errors = _errors(answer, lifecycle)
            count_capacity_errors(config, action, errors, job["id"] if job else None)
            if instance is not None:
                if errors:
                    log.info("pools skipped", errors=[e.describe(True) for e in errors])
                log.info("instance launched", member_id=member.id, **instance)
                return instance
            tried += _pools_tried(request, errors, lifecycle)
            _raise_unless_capacity(errors, tried)
            log.warning("no capacity for the purchase option", lifecycle=lifecycle, pools=len(request_pools(request)))
        shown = ", ".join(pool.describe(len(lifecycles) > 1) for pool in tried)
        raise NoCapacity(f"no capacity for {purchase} in any of {len(tried)} pools tried: {shown}")
    except (NoCapacity, LaunchThrottled, InstanceLaunchFailed):
        if answered:
            registry.launch_failed(member)  # the next launch of the member is a new request
        raise


def count_capacity_errors(
    config: Config, action: ActionType, failures: Iterable[PoolTried], job_id: str | None = None
) -> None:
    """The CapacityErrors metric: one count per pool (instance type, zone) EC2 refused for lack of capacity, one EMF
    line per pool (a line holds one value per dimension). The zone is EC2's when its answer names it, else the
    subnet's from the configuration. The job's id, when a job launched, is an EMF property (not a dimension)."""
    refused = Counter(
        (failure.instance_type, failure.zone or config.zone_of(failure.subnet_id))
        for failure in failures
        if failure.code in CAPACITY_ERRORS
    )
    for (instance_type, zone), count in sorted(refused.items()):
        metrics.emit(
            {"CapacityErrors": count},
            {"job_id": job_id} if job_id else None,
            Action=action.key,
            InstanceType=instance_type,
            AvailabilityZone=zone,
        )


def _create_fleet(request: dict[str, Any]) -> dict[str, Any]:
    """CreateFleet's answer; an API error is classified as the errors of every pool would be."""
    try:
        answer: dict[str, Any] = aws.client("ec2").create_fleet(**request)
    except ClientError as exc:
        code = aws.error_code(exc)
        message = exc.response["Error"].get("Message", "")
        if code in THROTTLING_ERRORS:
            raise LaunchThrottled(f"CreateFleet: {code}: {message}") from exc
        if code not in CAPACITY_ERRORS:
            raise InstanceLaunchFailed(f"CreateFleet: {code}: {message}") from exc
        lifecycle = request["TargetCapacitySpecification"]["DefaultTargetCapacityType"]
        return {
            "Instances": [],
            "Errors": [_pool_error(pool, lifecycle, code, message) for pool in request_pools(request)],
        }
    return answer


def _pool_error(pool: dict[str, Any], lifecycle: str, code: str, message: str) -> dict[str, Any]:
    overrides = {"InstanceType": pool["InstanceType"], "SubnetId": pool["SubnetId"]}
    return {"LaunchTemplateAndOverrides": {"Overrides": overrides}, "Lifecycle": lifecycle, "ErrorCode": code,
            "ErrorMessage": message}  # fmt: skip


def _fleet_instance(answer: dict[str, Any]) -> Instance | None:
    """The instance an instant fleet launched, as acquire hands it on; None when it launched none."""
    for launched in answer.get("Instances") or []:
        if not launched.get("InstanceIds"):
            continue
        overrides = (launched.get("LaunchTemplateAndOverrides") or {}).get("Overrides") or {}
        instance: Instance = {
            "instance_id": launched["InstanceIds"][0],
            "subnet_id": str(overrides.get("SubnetId") or launched.get("SubnetId") or ""),
            # CreateFleet returns no LaunchTime: this clock's reading when it returned. The registration wait measures
            # from launched_epoch.
            "launched_at": datetime.now(UTC).isoformat(),
            "launched_epoch": round(time.time(), 3),
            "instance_type": str(launched.get("InstanceType") or overrides.get("InstanceType") or ""),
            "lifecycle": SPOT if launched.get("Lifecycle") == SPOT else ON_DEMAND,
        }
        return instance
    return None


def _errors(answer: dict[str, Any], lifecycle: str) -> list[PoolTried]:
    """EC2's errors for the pools it tried, in its order."""
    found = []
    for error in answer.get("Errors") or []:
        overrides = (error.get("LaunchTemplateAndOverrides") or {}).get("Overrides") or {}
        found.append(
            PoolTried(
                instance_type=str(overrides.get("InstanceType") or "any type"),
                subnet_id=str(overrides.get("SubnetId") or "any subnet"),
                lifecycle=str(error.get("Lifecycle") or lifecycle),
                code=str(error.get("ErrorCode") or ""),
                message=str(error.get("ErrorMessage") or ""),
                zone=str(overrides.get("AvailabilityZone") or ""),
            )
        )
    return found


def _pools_tried(request: dict[str, Any], errors: list[PoolTried], lifecycle: str) -> list[PoolTried]:
    """Every pool of the request, with EC2's error for it where it reported one, and errors of no pool after them."""
    by_pool: dict[tuple[str, str], PoolTried | None] = {(e.instance_type, e.subnet_id): e for e in errors}
    tried = [
        by_pool.pop((pool["InstanceType"], pool["SubnetId"]), None)
        or PoolTried(pool["InstanceType"], pool["SubnetId"], lifecycle)
        for pool in request_pools(request)
    ]
    return tried + [e for e in by_pool.values() if e is not None]


def _raise_unless_capacity(errors: list[PoolTried], tried: list[PoolTried]) -> None:
    """No instance: LaunchThrottled when EC2 throttled a pool, InstanceLaunchFailed with the first error that is
    neither throttling nor capacity; nothing when every error is a capacity error."""
    other = [e for e in errors if e.code and e.code not in CAPACITY_ERRORS]
    if not other:
        return
    if all(e.code in THROTTLING_ERRORS for e in other):
        raise LaunchThrottled(f"CreateFleet: {other[0].code}: {other[0].message}")
    first = next(e for e in other if e.code not in THROTTLING_ERRORS)
    pools = ", ".join(pool.describe(True) for pool in tried)
    raise InstanceLaunchFailed(f"CreateFleet: {first.code}: {first.message} (pools tried: {pools})")


def request_pools(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The overrides of a fleet request: its pools, in order of preference."""
    return [pool for config in request["LaunchTemplateConfigs"] for pool in config["Overrides"]]


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
            raise NoCapacityToStart(why, code) from exc
        if code in NOT_STARTABLE_ERRORS:
            raise NotStartable(why) from exc
        raise
    log.info("instance started", instance_id=member.instance_id, member_id=member.id)
    started: Instance = {
        "instance_id": member.instance_id,
        "subnet_id": member.subnet_id or "",
        "launched_at": member.launched_at or "",
        "launched_epoch": round(time.time(), 3),
        "lifecycle": ON_DEMAND,  # a spot instance cannot be stopped
    }
    if member.instance_type:
        started["instance_type"] = member.instance_type
    return started


def subnet_rotation(subnet_ids: tuple[str, ...], seed: str) -> list[str]:
    """Every subnet once, starting at a place derived from the seed (a job or member id): launches spread, a retry
    repeats its order."""
    start_at = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(subnet_ids)
    return list(subnet_ids[start_at:] + subnet_ids[:start_at])


def self_shutdown_minutes(build: BuildSpec, config: Config) -> int:
    """When an ephemeral instance shuts itself down: registration window + build timeout + a grace period."""
    seconds = config.ssm_registration_timeout_seconds + build["task_timeout_seconds"]
    return math.ceil(seconds / 60) + SHUTDOWN_GRACE_MINUTES


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


def client_token(member: Member, lifecycle: str) -> str:
    """Per member, instance generation and lifecycle: a retried launch reuses it (no second instance); a member that
    replaces its instance (a start without capacity, a spot interruption) gets a new one, and so does a launch after
    one EC2 answered without an instance (EC2 answers a token it has seen with its first answer)."""
    seed = f"{member.id}/{member.instance_id or ''}/{lifecycle}"
    if member.failed_launches:
        seed += f"/{member.failed_launches}"
    return hashlib.sha256(seed.encode()).hexdigest()[:64]


def root_volume(build: BuildSpec) -> list[dict[str, Any]]:
    """The root volume: the build's size, gp3, encrypted, deleted with the instance."""
    ebs = {"VolumeSize": build["root_volume_gib"], "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}
    return [{"DeviceName": build["root_device_name"], "Ebs": ebs}]


def pools_of(config: Config, build: BuildSpec, seed: str) -> list[tuple[str, str]]:
    """The (instance type, subnet) pools of a launch in order of preference: each type, best first, in every subnet
    (rotated by the seed)."""
    subnets = subnet_rotation(config.subnet_ids, seed)
    return [(instance_type, subnet_id) for instance_type in build["instance_types"] for subnet_id in subnets]


def fleet_request(
    config: Config,
    job: Job | None,
    build: BuildSpec,
    member: Member,
    pool_member: bool,
    action: ActionType,
    lifecycle: str,
    deadline: datetime,
) -> dict[str, Any]:
    """CreateFleet's arguments (type instant, one instance) for the member's instance bought as `lifecycle`. The
    platform's launch template gives the instance profile, the security groups and the self-shutdown; the overrides
    give the pools, the AMI and the root volume."""
    template_id, version = config.launch_template(build["platform"])
    overrides = [
        {
            "InstanceType": instance_type,
            "SubnetId": subnet_id,
            "ImageId": build["image_id"],
            "BlockDeviceMappings": root_volume(build),
            "Priority": float(index),
        }
        for index, (instance_type, subnet_id) in enumerate(pools_of(config, build, job["id"] if job else member.id))
    ]
    request: dict[str, Any] = {
        "Type": "instant",
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": version},
                "Overrides": overrides,
            }
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": instance_tags(config, job, member, deadline, pool_member)}
        ],
        "ClientToken": client_token(member, lifecycle),
    }
    if lifecycle == SPOT:
        request["TargetCapacitySpecification"] = {
            "TotalTargetCapacity": 1,
            "DefaultTargetCapacityType": SPOT,
            "SpotTargetCapacity": 1,
        }
        request["SpotOptions"] = {
            "AllocationStrategy": action.allocation_strategy,
            "InstanceInterruptionBehavior": "terminate",
        }
    else:
        request["TargetCapacitySpecification"] = {
            "TotalTargetCapacity": 1,
            "DefaultTargetCapacityType": ON_DEMAND,
            "OnDemandTargetCapacity": 1,
        }
        # The action's own strategy when it buys on-demand; a spot action's fallback takes its types in order.
        strategy = action.allocation_strategy if action.purchase_option == ON_DEMAND else "prioritized"
        request["OnDemandOptions"] = {"AllocationStrategy": strategy}
    return request


def _launch_hibernating(
    config: Config, action: ActionType, build: BuildSpec, member: Member, deadline: datetime
) -> Instance:
    """A hibernating pool's member, with RunInstances: CreateFleet cannot configure hibernation (only a launch
    template can, and the builders' templates serve every pool). On-demand (a stopped pool is never spot), each pool
    in turn on capacity errors, its client token per pool."""
    template_id, version = config.launch_template(build["platform"])
    tried: list[PoolTried] = []
    for instance_type, subnet_id in pools_of(config, build, member.id):
        request = {
            "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": version},
            "ImageId": build["image_id"],
            "InstanceType": instance_type,
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
            "BlockDeviceMappings": root_volume(build),
            "HibernationOptions": {"Configured": True},
            "TagSpecifications": [
                {"ResourceType": kind, "Tags": instance_tags(config, None, member, deadline, True)}
                for kind in ("instance", "volume", "network-interface")
            ],
            "ClientToken": client_token(member, f"{ON_DEMAND}/{instance_type}/{subnet_id}"),
        }
        try:
            launched: dict[str, Any] = aws.client("ec2").run_instances(**request)["Instances"][0]
        except ClientError as exc:
            code = aws.error_code(exc)
            message = exc.response["Error"].get("Message", "")
            if code in THROTTLING_ERRORS:
                raise LaunchThrottled(f"RunInstances: {code}: {message}") from exc
            if code not in CAPACITY_ERRORS:
                raise InstanceLaunchFailed(f"RunInstances: {code}: {message}") from exc
            tried.append(PoolTried(instance_type, subnet_id, ON_DEMAND, code, message))
            continue
        count_capacity_errors(config, action, tried)
        log.info("instance launched", instance_id=launched["InstanceId"], subnet_id=subnet_id, member_id=member.id)
        return {
            "instance_id": launched["InstanceId"],
            "subnet_id": subnet_id,
            "launched_at": launched["LaunchTime"].astimezone(UTC).isoformat(),
            "launched_epoch": round(time.time(), 3),
            "instance_type": instance_type,
            "lifecycle": ON_DEMAND,
        }
    count_capacity_errors(config, action, tried)
    shown = ", ".join(pool.describe(False) for pool in tried)
    raise NoCapacity(f"no capacity for {ON_DEMAND} in any of {len(tried)} pools tried: {shown}")
