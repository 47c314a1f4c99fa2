"""Pool policy, pure functions (DESIGN.md, "Instance pools"): how many ready instances a pool wants now, when an
instance retires, and what configuration an instance has (so that a pool member serves only builds it matches).

Nothing here calls AWS: acquire, release and the keeper decide with these and act with registry/launcher.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from .config import ActionType, Config, PoolSettings
from .guardrails import instance_type_list

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# AWS stops a hibernated instance from hibernating again after 60 days; it retires a day before.
HIBERNATION_LIMIT_HOURS = 59 * 24
# The job configuration properties that decide the instance: a job overriding one of them with another value than
# its action's default does not match the pool (it runs on an ephemeral member under the same cap).
INSTANCE_PROPERTIES = ("ImageId", "InstanceType", "RootVolumeGiB")


class RetireFacts(Protocol):
    """What retire_reason reads of a member record (registry.Member has these)."""

    @property
    def builds(self) -> int: ...
    @property
    def launched_epoch(self) -> float: ...
    @property
    def config(self) -> str: ...


def _epoch(now: float | datetime) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


def desired_min(settings: PoolSettings | None, now: float | datetime) -> int:
    """The pool's minimum of ready instances at `now`: the first schedule window that contains now (in the pool's
    timezone) wins, else min_ready. An ephemeral action (no settings) keeps none."""
    if settings is None:
        return 0
    local = datetime.fromtimestamp(_epoch(now), UTC).astimezone(ZoneInfo(settings.timezone))
    day = DAYS[local.weekday()]
    for window in settings.schedule:
        if day in window.days and window.from_hour <= local.hour < window.to_hour:
            return window.min_ready
    return settings.min_ready


def max_age_hours(settings: PoolSettings) -> int:
    """The age at which a member retires: max_age_hours, and never beyond the hibernation limit when it hibernates."""
    return min(settings.max_age_hours, HIBERNATION_LIMIT_HOURS) if settings.hibernate else settings.max_age_hours


def retire_reason(
    settings: PoolSettings,
    member: RetireFacts,
    now: float | datetime,
    current_config: str,
    build_failed: bool = False,
    command_retire: str | None = None,
) -> str | None:
    """Why a pool member must not serve another build, or None to keep it. `member.builds` counts the builds it has
    served, the one just ended included. A failed or timed-out build leaves an instance in an unknown state: it is
    never reused."""
    if build_failed:
        return "the build failed or timed out"
    if command_retire:
        return command_retire
    if member.builds >= settings.max_builds:
        return f"recycled after {member.builds} builds (max_builds {settings.max_builds})"
    age_hours = (_epoch(now) - member.launched_epoch) / 3600
    limit = max_age_hours(settings)
    if member.launched_epoch and age_hours >= limit:
        return f"recycled at {age_hours:.0f} hours of age (limit {limit} hours)"
    if member.config != current_config:
        return "rotated: the pool's configuration changed (AMI, instance type, volume or launch template)"
    return None


def config_hash(
    image_id: str,
    instance_types: Sequence[str],
    root_volume_gib: int,
    launch_template: tuple[str, str],
    hibernate: bool,
    purchase_option: str = "on-demand",
) -> str:
    """The configuration of an instance, as 16 hex digits: a member serves only a build with the same one, and a
    pool whose configuration changed rotates its members. `launch_template` is the platform's (id, version)."""
    template_id, template_version = launch_template
    fields = [image_id, list(instance_types), int(root_volume_gib), template_id, str(template_version)]
    return hashlib.sha256(json.dumps([*fields, hibernate, purchase_option]).encode()).hexdigest()[:16]


def build_config(config: Config, action: ActionType | None, build: Mapping[str, Any]) -> str:
    """The configuration hash of an instance launched for this build spec with its platform's launch template (and
    the action's hibernation and purchase option)."""
    hibernate = bool(action is not None and action.pool is not None and action.pool.hibernate)
    return config_hash(
        str(build["image_id"]),
        [str(t) for t in build.get("instance_types") or [build["instance_type"]]],
        int(build["root_volume_gib"]),
        config.launch_template(str(build.get("platform") or "Linux")),
        hibernate,
        action.purchase_option if action is not None else "on-demand",
    )


def pool_config(config: Config, action: ActionType, root_volume_gib: int, platform: str = "Linux") -> str:
    """The configuration hash the pool's members have now (from the action's defaults and the current launch
    template version of the platform). `root_volume_gib` stands in when the action sets no RootVolumeGiB (a matching
    build's, or buildspec.pool_build's: both derive it from the AMI the same way); `platform` is the AMI's (a
    matching build's)."""
    defaults = action.defaults
    return config_hash(
        str(defaults.get("ImageId", "")),
        action.default_instance_types(),
        int(defaults.get("RootVolumeGiB") or root_volume_gib),
        config.launch_template(platform),
        bool(action.pool is not None and action.pool.hibernate),
        action.purchase_option,
    )


def job_matches_pool(action: ActionType, configuration: Mapping[str, Any]) -> bool:
    """Whether a job of a pooled action runs on the pool: it sets none of the instance properties to a value other
    than the action's default (its build spec then has the pool's configuration). An InstanceType list matches when
    it names the action's default types in their order."""
    if not action.pooled:
        return False
    for name in INSTANCE_PROPERTIES:
        given = configuration.get(name)
        if given in (None, ""):
            continue
        if name == "InstanceType":
            if instance_type_list(str(given)) != action.default_instance_types():
                return False
        elif str(given) != str(action.defaults.get(name)):
            return False
    return True
