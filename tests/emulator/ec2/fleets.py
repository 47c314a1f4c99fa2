"""EC2 Fleet's CreateFleet of Type instant in the emulator: one synchronous launch across capacity pools, per-override
errors, Spot and On-Demand. (Fleets of type maintain and request stay moto's.)

Each override of each launch template config is a pool: its instance type, subnet (or zone) and image over the
launch template's data. Pools are tried in the order the allocation strategy gives:

- on-demand `prioritized` and spot `capacity-optimized-prioritized`: by Priority (lowest first; overrides without
  one after those with one), then request order;
- spot `price-capacity-optimized` and `capacity-optimized`: the pool with the most capacity left
  (``ec2.capacity``), ties in request order;
- `lowest-price` (the default of both) and `diversified`: request order, `diversified` spreading the instances of one
  request over the pools.

A pool without capacity (``faults.fleet_capacity``) or whose launch EC2 refuses (an unknown subnet, a missing
launch template) adds an entry to Errors and the next pool is tried; the instances launched are listed in Instances,
grouped by pool and lifecycle. Every instance is launched through moto's RunInstances path (``EC2Backend.
run_instances`` as the emulator extends it) with the launch template, so its user data, network interfaces and
security groups, instance profile, metadata options, hibernation options and tags apply as for RunInstances, and so
do the instance lifecycle, the SSM Agent's registration and the instance's disk. The override's InstanceType,
SubnetId, ImageId and BlockDeviceMappings replace the template's; the request's instance TagSpecifications and EC2's
`aws:ec2:fleet-id` tag are added. Spot Instances have InstanceLifecycle "spot" and a SpotInstanceRequestId.

A ClientToken makes the request idempotent: the same token answers the first answer again (and the same token with
other parameters IdempotentParameterMismatch).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import ServiceException
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.utils import random_fleet_id

from emulator.ec2 import capacity

SPOT_STRATEGIES = (
    "lowest-price",
    "diversified",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "price-capacity-optimized",
)
ON_DEMAND_STRATEGIES = ("lowest-price", "prioritized")
BY_PRIORITY = ("prioritized", "capacity-optimized-prioritized")
BY_CAPACITY = ("price-capacity-optimized", "capacity-optimized")
DEFAULT_STRATEGY = "lowest-price"
FLEET_ID_TAG = "aws:ec2:fleet-id"
# The members of an override EC2 echoes in a response (FleetLaunchTemplateOverrides).
ECHOED = ("InstanceType", "MaxPrice", "SubnetId", "AvailabilityZone", "WeightedCapacity", "Priority", "ImageId")
ECHOED_EBS = ("Encrypted", "DeleteOnTermination", "Iops", "Throughput", "KmsKeyId", "SnapshotId", "VolumeSize")
ECHOED_EBS += ("VolumeType",)

_lock = threading.Lock()
_ANSWERS = "_emulator_instant_fleet_answers"  # on the EC2 backend: token -> (request, answer); goes with its reset


class MissingParameter(EC2ClientError):
    def __init__(self, name: str) -> None:
        super().__init__("MissingParameter", f"The request must contain the parameter {name}")


class InvalidParameterValue(EC2ClientError):
    def __init__(self, name: str, value: Any) -> None:
        super().__init__("InvalidParameterValue", f"Value ({value}) for parameter {name} is invalid.")


class IdempotentParameterMismatch(EC2ClientError):
    def __init__(self, token: str) -> None:
        super().__init__(
            "IdempotentParameterMismatch",
            f"The client token {token} has already been used for a request with different parameters.",
        )


@dataclass
class Pool:
    """One override of one launch template config: where an instance may be launched."""

    order: int
    specification: dict[str, Any]  # the LaunchTemplateSpecification as answered (the template's id resolved)
    override: dict[str, Any]  # as requested
    template: Any  # moto's LaunchTemplateVersion, None if the template (version) does not exist
    instance_type: str
    subnet_id: str | None
    zone: str
    launched: list[Any] = field(default_factory=list)  # (lifecycle, instance)

    @property
    def priority(self) -> float:
        value = self.override.get("Priority")
        return math.inf if value is None else float(value)

    def echoed(self) -> dict[str, Any]:
        """LaunchTemplateAndOverrides as CreateFleet answers it."""
        overrides = {key: self.override[key] for key in ECHOED if key in self.override}
        if "BlockDeviceMappings" in self.override:
            overrides["BlockDeviceMappings"] = [_echoed_mapping(m) for m in self.override["BlockDeviceMappings"]]
        answer: dict[str, Any] = {"LaunchTemplateSpecification": self.specification}
        if overrides:
            answer["Overrides"] = overrides
        return answer


def _echoed_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    echoed = {key: mapping[key] for key in ("DeviceName", "VirtualName", "NoDevice") if key in mapping}
    if "Ebs" in mapping:
        echoed["Ebs"] = {key: mapping["Ebs"][key] for key in ECHOED_EBS if key in mapping["Ebs"]}
    return echoed


@dataclass(frozen=True)
class Failure:
    pool: Pool
    lifecycle: str
    code: str
    message: str

    def view(self) -> dict[str, Any]:
        return {
            "LaunchTemplateAndOverrides": self.pool.echoed(),
            "Lifecycle": self.lifecycle,
            "ErrorCode": self.code,
            "ErrorMessage": self.message,
        }


# -- the request ------------------------------------------------------------------------------------------------------


def _validated(request: dict[str, Any]) -> None:
    configs = request.get("LaunchTemplateConfigs") or []
    if not configs:
        raise MissingParameter("LaunchTemplateConfigs")
    for config in configs:
        specification = config.get("LaunchTemplateSpecification") or {}
        if not specification.get("LaunchTemplateId") and not specification.get("LaunchTemplateName"):
            raise MissingParameter("LaunchTemplateConfigs.LaunchTemplateSpecification.LaunchTemplateId or "
                                   "LaunchTemplateName")  # fmt: skip
        if specification.get("LaunchTemplateId") and specification.get("LaunchTemplateName"):
            raise EC2ClientError(
                "InvalidParameterCombination", "Only one of LaunchTemplateId or LaunchTemplateName can be specified."
            )
    target = request.get("TargetCapacitySpecification") or {}
    if target.get("TotalTargetCapacity") is None:
        raise MissingParameter("TargetCapacitySpecification.TotalTargetCapacity")
    default = target.get("DefaultTargetCapacityType") or capacity.ON_DEMAND
    if default not in (capacity.SPOT, capacity.ON_DEMAND):
        raise InvalidParameterValue("DefaultTargetCapacityType", default)
    spot = (request.get("SpotOptions") or {}).get("AllocationStrategy")
    if spot is not None and spot not in SPOT_STRATEGIES:
        raise InvalidParameterValue("SpotOptions.AllocationStrategy", spot)
    on_demand = (request.get("OnDemandOptions") or {}).get("AllocationStrategy")
    if on_demand is not None and on_demand not in ON_DEMAND_STRATEGIES:
        raise InvalidParameterValue("OnDemandOptions.AllocationStrategy", on_demand)


def _targets(request: dict[str, Any]) -> list[tuple[str, int]]:
    """How many instances to launch per lifecycle: the explicit Spot and On-Demand targets, the rest as the default
    target capacity type."""
    target = request["TargetCapacitySpecification"]
    total = int(target["TotalTargetCapacity"])
    spot = int(target.get("SpotTargetCapacity") or 0)
    on_demand = int(target.get("OnDemandTargetCapacity") or 0)
    rest = max(0, total - spot - on_demand)
    counts = {capacity.SPOT: spot, capacity.ON_DEMAND: on_demand}
    counts[target.get("DefaultTargetCapacityType") or capacity.ON_DEMAND] += rest
    return [(lifecycle, count) for lifecycle, count in counts.items() if count > 0]


def _strategy(request: dict[str, Any], lifecycle: str) -> str:
    options = request.get("SpotOptions" if lifecycle == capacity.SPOT else "OnDemandOptions") or {}
    return str(options.get("AllocationStrategy") or DEFAULT_STRATEGY)


# -- pools ------------------------------------------------------------------------------------------------------------


def _template(backend: Any, specification: dict[str, Any]) -> tuple[Any, dict[str, Any], ServiceException | None]:
    """(moto's template version or None, the specification as answered, EC2's error for each of its overrides when
    the template or its version does not exist: InvalidLaunchTemplateId.NotFound, InvalidLaunchTemplateName.
    NotFoundException, InvalidLaunchTemplateId.VersionNotFound)."""
    answered = dict(specification)
    try:
        if specification.get("LaunchTemplateId"):
            template = backend.get_launch_template(specification["LaunchTemplateId"])
        else:
            template = backend.get_launch_template_by_name(specification["LaunchTemplateName"])
        answered["LaunchTemplateId"] = template.id
        return template.get_version(specification.get("Version") or "$Default"), answered, None
    except ServiceException as missing:
        return None, answered, missing


def _zone(backend: Any, template: Any, override: dict[str, Any]) -> tuple[str | None, str]:
    subnet_id = override.get("SubnetId") or _template_subnet(template)
    if subnet_id:
        try:
            return subnet_id, backend.get_subnet(subnet_id).availability_zone
        except ServiceException:
            return subnet_id, ""  # the launch fails with EC2's InvalidSubnetID.NotFound
    data = template.data if template is not None else {}
    zone = override.get("AvailabilityZone") or (data.get("Placement") or {}).get("AvailabilityZone")
    return None, zone or f"{backend.region_name}a"


def _template_subnet(template: Any) -> str | None:
    if template is None:
        return None
    primary = [n for n in template.data.get("NetworkInterfaces") or [] if int(n.get("DeviceIndex", 0)) == 0]
    return (primary[0].get("SubnetId") if primary else None) or template.data.get("SubnetId")


def _pools(backend: Any, configs: list[dict[str, Any]]) -> tuple[list[Pool], list[tuple[Pool, ServiceException]]]:
    pools: list[Pool] = []
    missing: list[tuple[Pool, ServiceException]] = []
    for config in configs:
        template, specification, failure = _template(backend, config["LaunchTemplateSpecification"])
        for override in config.get("Overrides") or [{}]:
            data = template.data if template is not None else {}
            subnet_id, zone = _zone(backend, template, override)
            instance_type = override.get("InstanceType") or data.get("InstanceType") or "m1.small"
            pool = Pool(len(pools), specification, override, template, instance_type, subnet_id, zone)
            pools.append(pool)
            if failure is not None:
                missing.append((pool, failure))
    return pools, missing


def _ordered(pools: list[Pool], strategy: str, lifecycle: str, launched_here: dict[int, int]) -> list[Pool]:
    """The pools in the order the allocation strategy tries them for the next instance."""
    if strategy in BY_PRIORITY:
        return sorted(pools, key=lambda p: (p.priority, p.order))
    if strategy in BY_CAPACITY:
        return sorted(pools, key=lambda p: (-capacity.remaining(lifecycle, p.instance_type, p.zone), p.order))
    if strategy == "diversified":
        return sorted(pools, key=lambda p: (launched_here.get(p.order, 0), p.order))
    return sorted(pools, key=lambda p: p.order)


# -- launching --------------------------------------------------------------------------------------------------------


def _mappings(template: Any, override: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The override's block device mappings over the template's (by device name); None: the template's as they are."""
    if "BlockDeviceMappings" not in override:
        return None
    merged = {m["DeviceName"]: m for m in template.data.get("BlockDeviceMappings") or []}
    merged |= {m["DeviceName"]: m for m in override["BlockDeviceMappings"]}
    return list(merged.values())


def _network(template: Any, subnet_id: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The template's network interfaces with the override's subnet on the primary one, and the primary's security
    groups (EC2 shows them as the instance's)."""
    nics = json.loads(json.dumps(template.data.get("NetworkInterfaces") or []))
    groups: list[str] = []
    for nic in nics:
        if int(nic.get("DeviceIndex", 0)) == 0:
            if subnet_id:
                nic["SubnetId"] = subnet_id
            groups = list(nic.pop("Groups", None) or [])
    return nics, groups


def _launch(backend: Any, pool: Pool, lifecycle: str, tags: dict[str, dict[str, str]]) -> Any:
    """One instance in the pool, through RunInstances' path (moto's run_instances as the emulator extends it)."""
    template = pool.template
    data = template.data
    nics, groups = _network(template, pool.subnet_id)
    kwargs: dict[str, Any] = {
        "instance_type": pool.instance_type,
        "is_instance_type_default": False,
        "region_name": backend.region_name,
        "launch_template": {"LaunchTemplateId": template.template.id, "Version": str(template.number)},
        "nics": nics,
        "subnet_id": None if nics else pool.subnet_id,
        "placement": None if pool.subnet_id else pool.zone,
        "key_name": data.get("KeyName"),
        "tags": tags,
        "ebs_optimized": bool(data.get("EbsOptimized")),
        "disable_api_stop": bool(data.get("DisableApiStop")),
        "disable_api_termination": bool(data.get("DisableApiTermination")),
        "instance_initiated_shutdown_behavior": data.get("InstanceInitiatedShutdownBehavior"),
        "metadata_options": data.get("MetadataOptions") or {},
        "monitoring_state": "enabled" if (data.get("Monitoring") or {}).get("Enabled") else "disabled",
        "instance_market_options": "spot" if lifecycle == capacity.SPOT else {},
        "client_token": None,
    }
    if groups or data.get("SecurityGroupIds"):
        kwargs["security_group_ids"] = [*groups, *(data.get("SecurityGroupIds") or [])]
    mappings = _mappings(template, pool.override)
    if mappings is not None:
        kwargs["block_device_mappings"] = mappings
    image_id = pool.override.get("ImageId") or data.get("ImageId")
    [instance] = backend.run_instances(image_id, 1, None, [], **kwargs).instances
    return instance


def _instance_tags(request: dict[str, Any], fleet_id: str) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for spec in request.get("TagSpecifications") or []:
        if spec.get("ResourceType") in ("instance", "volume"):
            tags.setdefault(spec["ResourceType"], {}).update({t["Key"]: t["Value"] for t in spec.get("Tags") or []})
    tags.setdefault("instance", {})[FLEET_ID_TAG] = fleet_id
    return tags


def _other_zones(backend: Any, zone: str) -> list[str]:
    return [z.name for z in backend.describe_availability_zones() if z.name != zone]


def _fill(
    backend: Any, pools: list[Pool], lifecycle: str, count: int, strategy: str, tags: dict[str, dict[str, str]]
) -> list[Failure]:
    """Launch `count` instances of `lifecycle`, pool after pool as the strategy orders them; a pool that fails is
    not tried again by this request."""
    failures: list[Failure] = []
    usable = list(pools)
    launched_here: dict[int, int] = {}
    while sum(launched_here.values()) < count and usable:
        pool = _ordered(usable, strategy, lifecycle, launched_here)[0]
        if capacity.remaining(lifecycle, pool.instance_type, pool.zone) < 1:
            error = capacity.no_capacity(lifecycle, pool.instance_type, pool.zone, _other_zones(backend, pool.zone))
            failures.append(Failure(pool, lifecycle, error.code, error.message))
            usable.remove(pool)
            continue
        try:
            instance = _launch(backend, pool, lifecycle, tags)
        except ServiceException as refused:
            failures.append(Failure(pool, lifecycle, refused.code, refused.message))
            usable.remove(pool)
            continue
        capacity.take(lifecycle, pool.instance_type, pool.zone)
        pool.launched.append((lifecycle, instance))
        launched_here[pool.order] = launched_here.get(pool.order, 0) + 1
    return failures


def _instances_view(pools: Iterable[Pool]) -> list[dict[str, Any]]:
    views = []
    for pool in pools:
        for lifecycle in (capacity.ON_DEMAND, capacity.SPOT):
            mine = [instance for launched_as, instance in pool.launched if launched_as == lifecycle]
            if not mine:
                continue
            view: dict[str, Any] = {
                "LaunchTemplateAndOverrides": pool.echoed(),
                "Lifecycle": lifecycle,
                "InstanceIds": [instance.id for instance in mine],
                "InstanceType": pool.instance_type,
            }
            if (mine[0].platform or "").lower() == "windows":
                view["Platform"] = "Windows"
            views.append(view)
    return views


def create_instant_fleet(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    """CreateFleet with Type instant: the CreateFleetResult (FleetId, Errors, Instances)."""
    _validated(request)
    token = request.get("ClientToken")
    fingerprint = json.dumps({k: v for k, v in request.items() if k != "ClientToken"}, sort_keys=True, default=str)
    with _lock:  # one request at a time: a retry with the same token waits for the first answer
        answers: dict[str, tuple[str, dict[str, Any]]] = backend.__dict__.setdefault(_ANSWERS, {})
        if token and token in answers:
            asked, answer = answers[token]
            if asked != fingerprint:
                raise IdempotentParameterMismatch(str(token))
            return answer
        answer = _create(backend, request)
        if token:
            answers[token] = (fingerprint, answer)
        return answer


def _create(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    fleet_id = random_fleet_id()
    pools, missing = _pools(backend, request["LaunchTemplateConfigs"])
    tags = _instance_tags(request, fleet_id)
    failures: list[Failure] = []
    unusable = {pool.order for pool, _ in missing}
    for lifecycle, count in _targets(request):
        failures += [Failure(pool, lifecycle, error.code, error.message) for pool, error in missing]
        usable = [pool for pool in pools if pool.order not in unusable]
        failures += _fill(backend, usable, lifecycle, count, _strategy(request, lifecycle), tags)
    return {
        "FleetId": fleet_id,
        "Errors": [failure.view() for failure in failures],
        "Instances": _instances_view(pools),
    }
