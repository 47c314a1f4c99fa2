"""The Lambda configuration: one JSON environment variable, EC2_ACTION_CONFIG (DESIGN.md, "Lambda configuration")."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .payloads import ActionTypeId

ENV_VAR = "EC2_ACTION_CONFIG"


STRATEGIES = ("ephemeral", "warm", "stopped")
PURCHASE_OPTIONS = ("on-demand", "spot", "spot-then-on-demand")


@dataclass(frozen=True)
class Window:
    """A time window overriding a pool's minimum (e.g. 3 ready on weekdays 07-19): days "Mon".."Sun", hours in the
    pool's timezone, from_hour inclusive, to_hour exclusive."""

    days: tuple[str, ...]
    from_hour: int
    to_hour: int
    min_ready: int


@dataclass(frozen=True)
class PoolSettings:
    """A warm or stopped action's pool: how many ready instances to keep, and when an instance retires."""

    min_ready: int
    schedule: tuple[Window, ...]
    timezone: str
    hibernate: bool
    max_builds: int
    max_age_hours: int
    max_idle_minutes: int
    reset_command: str


@dataclass(frozen=True)
class ActionType:
    """One served action type: a version of an action. The versions of an action share its defaults and its
    capacity: `key` (the action's key in the module's `actions`) names the pool, the cap and the queue they share."""

    category: str
    owner: str
    provider: str
    version: str
    defaults: dict[str, Any]
    key: str
    strategy: str  # one of STRATEGIES
    cap: int  # max_concurrent_builds: builds running or instances held, any strategy
    pool: PoolSettings | None  # None for ephemeral
    # Where and how its instances launch (DESIGN.md, "Spot and capacity fallback"): the instance types tried after
    # the InstanceType default, in order of preference; one of PURCHASE_OPTIONS; the allocation strategy of the
    # purchase option (resolved by Terraform: a spot strategy for spot purchases, else an on-demand one); the spot
    # interruptions of a build after which it restarts on-demand.
    instance_types: tuple[str, ...] = ()
    purchase_option: str = "on-demand"
    allocation_strategy: str = "prioritized"
    interruptions_before_on_demand: int = 2

    @property
    def uses_spot(self) -> bool:
        return self.purchase_option != "on-demand"

    def default_instance_types(self) -> tuple[str, ...]:
        """A job's instance types when it sets no InstanceType: the InstanceType default, then `instance_types`, each
        once, in order."""
        first = str(self.defaults.get("InstanceType") or "")
        return tuple(dict.fromkeys(t for t in (first, *self.instance_types) if t))

    @property
    def pooled(self) -> bool:
        """Whether instances of this action outlive their builds (warm or stopped)."""
        return self.pool is not None

    @property
    def type_id(self) -> ActionTypeId:
        """The actionTypeId as CodePipeline's API spells it."""
        return {"category": self.category, "owner": self.owner, "provider": self.provider, "version": self.version}


@dataclass(frozen=True)
class Config:
    stack: str
    actions: tuple[ActionType, ...]  # every served version of every action, each polled on its own
    state_machine_arn: str
    jobs_table: str
    document_name: str
    build_log_group: str
    launch_templates: dict[str, tuple[str, str]]  # platform -> (id, version): a new version rotates the pools
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    allowed_image_ids: tuple[str, ...]
    allowed_image_owners: tuple[str, ...]
    allowed_instance_types: tuple[str, ...]
    default_timeout_minutes: int
    max_timeout_minutes: int
    ssm_registration_timeout_seconds: int
    poll_function_name: str
    orphan_grace_seconds: int
    tracing: bool  # X-Ray: the functions load the SDK and trace their AWS calls only then
    pool_table: str  # the registry: instances, leases, the capacity queue
    keeper_function_name: str
    # CloudWatch namespace of the module's metrics (ec2_action.metrics), and each subnet's Availability Zone: a
    # capacity error names the subnet, the CapacityErrors metric the zone.
    metrics_namespace: str
    subnet_zones: Mapping[str, str]

    @property
    def partition(self) -> str:
        """The AWS partition (aws, aws-cn, aws-us-gov) the module runs in, read from its state machine's ARN."""
        return self.state_machine_arn.split(":")[1]

    def zone_of(self, subnet_id: str) -> str:
        """The Availability Zone of one of the module's subnets ("unknown" for a subnet it was not given)."""
        return self.subnet_zones.get(subnet_id) or "unknown"

    def launch_template(self, platform: str) -> tuple[str, str]:
        """The launch template (id, version) of a platform's builders ("Linux" or "Windows")."""
        return self.launch_templates[platform]

    def action(self, type_id: Mapping[str, object]) -> ActionType | None:
        """The served action type matching a job's actionTypeId (or an event's `type`), of any served version."""
        wanted = {key: str(type_id.get(key, "")) for key in ("category", "owner", "provider", "version")}
        return next((action for action in self.actions if action.type_id == wanted), None)

    def actions_by_key(self) -> dict[str, ActionType]:
        """One action type per action key (its versions share the pool, the cap and the queue), in key order."""
        found: dict[str, ActionType] = {}
        for action in self.actions:
            found.setdefault(action.key, action)
        return found


def _pool(raw: Mapping[str, Any] | None) -> PoolSettings | None:
    if raw is None:
        return None
    return PoolSettings(
        min_ready=int(raw.get("min", 0)),
        schedule=tuple(
            Window(
                days=tuple(window["days"]),
                from_hour=int(window["from"]),
                to_hour=int(window["to"]),
                min_ready=int(window["min"]),
            )
            for window in raw.get("schedule") or ()
        ),
        timezone=str(raw.get("tz") or "UTC"),
        hibernate=bool(raw.get("hibernate", False)),
        max_builds=int(raw.get("max_builds", 50)),
        max_age_hours=int(raw.get("max_age_h", 168)),
        max_idle_minutes=int(raw.get("idle_min", 10)),
        reset_command=str(raw.get("reset") or ""),
    )


def parse(text: str) -> Config:
    """Parse the JSON text of EC2_ACTION_CONFIG; a missing key raises KeyError naming it."""
    raw = json.loads(text)
    actions = tuple(
        ActionType(
            category=a["category"],
            owner=a["owner"],
            provider=a["provider"],
            version=str(version),
            defaults={k: v for k, v in (a.get("defaults") or {}).items() if v is not None},
            key=a["key"],
            strategy=a.get("strategy") or "ephemeral",
            cap=int(a.get("cap", 10)),
            pool=_pool(a.get("pool")) if a.get("strategy", "ephemeral") != "ephemeral" else None,
            instance_types=tuple(a.get("types") or ()),
            purchase_option=str(a.get("purchase") or "on-demand"),
            allocation_strategy=str(a.get("alloc") or "prioritized"),
            interruptions_before_on_demand=int(a.get("od_after", 2)),
        )
        for a in raw["actions"]
        for version in a["versions"]
    )
    return Config(
        stack=raw["stack"],
        actions=actions,
        state_machine_arn=raw["state_machine_arn"],
        jobs_table=raw["jobs_table"],
        document_name=raw["document_name"],
        build_log_group=raw["build_log_group"],
        launch_templates={
            platform: (str(template["id"]), str(template["version"]))
            for platform, template in raw["launch_templates"].items()
        },
        subnet_ids=tuple(raw["subnet_ids"]),
        security_group_ids=tuple(raw["security_group_ids"]),
        allowed_image_ids=tuple(raw.get("allowed_image_ids") or ()),
        allowed_image_owners=tuple(raw.get("allowed_image_owners") or ()),
        allowed_instance_types=tuple(raw.get("allowed_instance_types") or ()),
        default_timeout_minutes=int(raw["default_timeout_minutes"]),
        max_timeout_minutes=int(raw["max_timeout_minutes"]),
        ssm_registration_timeout_seconds=int(raw["ssm_registration_timeout_seconds"]),
        poll_function_name=raw["poll_function_name"],
        orphan_grace_seconds=int(raw["orphan_grace_seconds"]),
        tracing=bool(raw.get("tracing", False)),
        pool_table=raw["pool_table"],
        keeper_function_name=raw["keeper_function_name"],
        metrics_namespace=str(raw["metrics_namespace"]),
        subnet_zones={str(subnet): str(zone) for subnet, zone in raw["subnet_zones"].items()},
    )


@functools.cache
def load() -> Config:
    """The configuration of this container, parsed once."""
    return parse(os.environ[ENV_VAR])
