"""pools: the policy (a pool's minimum by schedule window and timezone, when a member retires, configurations)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from ec2_action import pools
from ec2_action.config import ActionType, PoolSettings, Window

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")


def settings(**changes: object) -> PoolSettings:
    values: dict[str, object] = {
        "min_ready": 1, "schedule": (), "timezone": "UTC", "hibernate": False, "max_builds": 50,
        "max_age_hours": 168, "max_idle_minutes": 10, "reset_command": "",
    }  # fmt: skip
    values.update(changes)
    return PoolSettings(**values)  # type: ignore[arg-type]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


OFFICE = settings(min_ready=0, schedule=(Window(WEEKDAYS, 7, 19, 3), Window(("Sat",), 0, 24, 1)))


@pytest.mark.parametrize(
    ("when", "wanted"),
    [
        ("2025-06-02T06:59:59", 0),  # a Monday, before the window
        ("2025-06-02T07:00:00", 3),  # from_hour is inclusive
        ("2025-06-02T18:59:59", 3),
        ("2025-06-02T19:00:00", 0),  # to_hour is exclusive
        ("2025-06-07T12:00:00", 1),  # Saturday's all-day window
        ("2025-06-08T12:00:00", 0),  # Sunday: no window, min_ready
    ],
)
def test_the_minimum_follows_the_schedule_windows(when: str, wanted: int) -> None:
    assert pools.desired_min(OFFICE, at(when)) == wanted
    assert pools.desired_min(OFFICE, at(when).timestamp()) == wanted  # epoch seconds too


def test_windows_are_read_in_the_pools_timezone() -> None:
    paris = settings(min_ready=0, schedule=(Window(WEEKDAYS, 7, 19, 3),), timezone="Europe/Paris")
    assert pools.desired_min(paris, at("2025-06-02T05:30:00")) == 3  # 07:30 in Paris (UTC+2 in June)
    assert pools.desired_min(paris, at("2025-06-02T17:30:00")) == 0  # 19:30 in Paris
    assert pools.desired_min(paris, at("2025-01-06T06:30:00")) == 3  # 07:30 in Paris in winter (UTC+1)


def test_the_first_matching_window_wins_and_ephemeral_keeps_none() -> None:
    overlapping = settings(schedule=(Window(("Mon",), 8, 12, 5), Window(("Mon",), 0, 24, 2)))
    assert pools.desired_min(overlapping, at("2025-06-02T09:00:00")) == 5
    assert pools.desired_min(overlapping, at("2025-06-02T13:00:00")) == 2
    assert pools.desired_min(None, at("2025-06-02T09:00:00")) == 0


@dataclass(frozen=True)
class Facts:
    builds: int = 1
    launched_epoch: float = 1_000_000.0
    config: str = "current"


NOW = 1_000_000.0 + 3600


@pytest.mark.parametrize(
    ("facts", "kwargs", "reason"),
    [
        (Facts(), {}, None),
        (Facts(), {"build_failed": True}, "the build failed or timed out"),
        (Facts(), {"command_retire": "the reset command exited 2"}, "the reset command exited 2"),
        (Facts(builds=50), {}, "recycled after 50 builds (max_builds 50)"),
        (Facts(builds=49), {}, None),
        (Facts(launched_epoch=NOW - 168 * 3600), {}, "recycled at 168 hours of age (limit 168 hours)"),
        (Facts(config="before"), {}, "rotated: the pool's configuration changed (AMI, instance type, volume or launch "
                                      "template)"),
    ],
)  # fmt: skip
def test_retire_reasons(facts: Facts, kwargs: dict[str, object], reason: str | None) -> None:
    assert pools.retire_reason(settings(), facts, NOW, "current", **kwargs) == reason  # type: ignore[arg-type]


def test_a_failed_build_retires_before_anything_else() -> None:
    worn = Facts(builds=99, config="before")
    assert pools.retire_reason(settings(), worn, NOW, "current", build_failed=True) == "the build failed or timed out"


def test_a_hibernating_member_retires_before_the_60_day_hibernation_limit() -> None:
    hibernating = settings(hibernate=True, max_age_hours=10_000)
    facts = Facts(launched_epoch=NOW - 59 * 24 * 3600)
    assert pools.retire_reason(hibernating, facts, NOW, "current") == "recycled at 1416 hours of age (limit 1416 hours)"
    assert pools.retire_reason(settings(max_age_hours=10_000), facts, NOW, "current") is None


def test_the_configuration_hash_changes_with_each_part() -> None:
    base = ("ami-1", ["t3.large"], 30, ("lt-1", "1"), False, "on-demand")
    changed = [
        ("ami-2", ["t3.large"], 30, ("lt-1", "1"), False, "on-demand"),
        ("ami-1", ["m6i.large"], 30, ("lt-1", "1"), False, "on-demand"),
        ("ami-1", ["t3.large", "m6i.large"], 30, ("lt-1", "1"), False, "on-demand"),
        ("ami-1", ["m6i.large", "t3.large"], 30, ("lt-1", "1"), False, "on-demand"),  # the order is the preference
        ("ami-1", ["t3.large"], 40, ("lt-1", "1"), False, "on-demand"),
        ("ami-1", ["t3.large"], 30, ("lt-2", "1"), False, "on-demand"),
        ("ami-1", ["t3.large"], 30, ("lt-1", "2"), False, "on-demand"),
        ("ami-1", ["t3.large"], 30, ("lt-1", "1"), True, "on-demand"),
        ("ami-1", ["t3.large"], 30, ("lt-1", "1"), False, "spot"),
    ]
    first = pools.config_hash(*base)  # type: ignore[arg-type]
    assert len(first) == 16 and first == pools.config_hash(*base)  # type: ignore[arg-type]
    assert len({pools.config_hash(*other) for other in changed} | {first}) == 10  # type: ignore[arg-type]


def action(strategy: str = "warm", instance_types: tuple[str, ...] = ()) -> ActionType:
    return ActionType(
        category="Build", owner="Custom", provider="EC2-Linux", version="1", key="build", strategy=strategy, cap=5,
        defaults={"ImageId": "ami-1", "InstanceType": "t3.large", "RootVolumeGiB": 30, "TimeoutMinutes": 60},
        pool=None if strategy == "ephemeral" else settings(), instance_types=instance_types,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("configuration", "matches"),
    [
        ({"Command": "make"}, True),
        ({"Command": "make", "ImageId": "ami-1", "RootVolumeGiB": "30", "TimeoutMinutes": "5"}, True),
        ({"Command": "make", "ImageId": ""}, True),  # an empty value is no value
        ({"Command": "make", "ImageId": "ami-2"}, False),
        ({"Command": "make", "InstanceType": "t3.xlarge"}, False),
        ({"Command": "make", "RootVolumeGiB": "100"}, False),
    ],
)
def test_a_job_matches_its_pool_unless_it_sets_another_instance(configuration: dict[str, str], matches: bool) -> None:
    assert pools.job_matches_pool(action(), configuration) is matches
    assert pools.job_matches_pool(action("ephemeral"), configuration) is False


@pytest.mark.parametrize(
    ("instance_type", "matches"),
    [
        ("t3.large, m6i.large", True),  # the action's default types, in their order
        ("t3.large,m6i.large,t3.large", True),
        ("t3.large", False),  # one type only: another build spec than the pool's
        ("m6i.large, t3.large", False),  # another order of preference
    ],
)
def test_an_instance_type_list_matches_the_pool_when_it_is_the_actions_types(instance_type: str, matches: bool) -> None:
    listed = action(instance_types=("m6i.large",))
    assert pools.job_matches_pool(listed, {"Command": "make", "InstanceType": instance_type}) is matches
