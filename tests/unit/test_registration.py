"""registration: when the wait for an instance's SSM registration checks, on a simulated clock (registration.wait
takes clock, sleep and time_left), and when a learned registration time is written (DynamoDB in moto)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from test_config import SETTINGS

from ec2_action import aws, config, registration
from ec2_action.registration import CHECK_INTERVAL, EARLY, FINE_WINDOW, MAX_INTERVAL, Waiting

LAUNCHED = 1_000_000.0
WINDOW = 900.0  # the registration window (ssm_registration_timeout_seconds)
INSTANCE = "i-0123456789abcdef0"


@dataclass
class World:
    """An instance and the clock: Systems Manager sees it Online from `online_at` (None: never); EC2 says `state`
    (from `gone_at` on: terminated). Checks and EC2 reads take no time."""

    now: float = LAUNCHED
    online_at: float | None = None
    gone_at: float | None = None
    checks: list[float] = field(default_factory=list)
    ec2_reads: list[float] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds

    def online_information(self, instance_id: str) -> dict[str, Any] | None:
        assert instance_id == INSTANCE
        self.checks.append(self.now)
        if self.online_at is not None and self.now >= self.online_at:
            return {"InstanceId": instance_id, "PingStatus": "Online", "PlatformType": "Linux"}
        return None

    def ec2_state(self, instance_id: str) -> registration.Ec2State:
        self.ec2_reads.append(self.now)
        if self.gone_at is not None and self.now >= self.gone_at:
            return registration.Ec2State("terminated", "Client.UserInitiatedShutdown: User initiated shutdown")
        return registration.Ec2State("running")

    def offsets(self) -> list[float]:
        """The checks' times, in seconds after the launch."""
        return [round(at - LAUNCHED, 6) for at in self.checks]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    found = World()
    monkeypatch.setattr(registration, "online_information", found.online_information)
    monkeypatch.setattr(registration, "ec2_state", found.ec2_state)
    return found


def wait(world: World, expected: float | None, time_left: float = 600.0) -> tuple[registration.Outcome, Waiting]:
    waiting = Waiting(launched=LAUNCHED, deadline=LAUNCHED + WINDOW, expected=expected)
    found = registration.wait(INSTANCE, waiting, lambda: time_left, clock=world.clock, sleep=world.sleep)
    return found, waiting


def test_a_known_registration_is_first_checked_just_before_its_learned_time(world: World) -> None:
    world.online_at = LAUNCHED + 30.4

    found, waiting = wait(world, expected=30.0)

    assert world.offsets() == [30 - EARLY, 30.0, 31.0]  # a sleep until then, then a check every second
    assert world.sleeps == [30 - EARLY, CHECK_INTERVAL, CHECK_INTERVAL]
    assert (found.online, found.checks, found.waited) == (True, 3, 31.0)
    assert found.info is not None and found.info["PingStatus"] == "Online"
    # Midway between the last check that missed and the one that saw it.
    assert waiting.registration_seconds(world.now) == 30.5


def test_a_wait_that_starts_late_checks_at_once(world: World) -> None:
    world.now = LAUNCHED + 45  # e.g. the second invocation of a slow registration
    world.online_at = LAUNCHED + 10

    found, waiting = wait(world, expected=10.0)

    assert world.offsets() == [45.0] and world.sleeps == []
    # Seen at the first check: a little earlier than that, so that the next job starts checking sooner.
    assert (found.online, found.checks) == (True, 1)
    assert waiting.registration_seconds(world.now) == 45 - EARLY


def test_checks_are_a_second_apart_in_the_fine_window_then_grow_to_the_maximum_until_the_deadline(
    world: World,
) -> None:
    found, _ = wait(world, expected=None)  # a new AMI that never registers

    offsets = world.offsets()
    intervals = [round(b - a, 6) for a, b in itertools.pairwise(offsets)]
    fine = int(FINE_WINDOW / CHECK_INTERVAL)
    assert offsets[: fine + 1] == [float(second) for second in range(fine + 1)]  # every second for the first minute
    growing = intervals[fine : intervals.index(MAX_INTERVAL)]
    assert growing == sorted(growing) and len(set(growing)) == len(growing)  # then longer and longer
    assert growing[0] == CHECK_INTERVAL * registration.GROWTH
    assert all(b == pytest.approx(min(a * registration.GROWTH, MAX_INTERVAL)) for a, b in itertools.pairwise(growing))
    tail = intervals[intervals.index(MAX_INTERVAL) :]
    assert set(tail[:-1]) == {MAX_INTERVAL} and 0 < tail[-1] <= MAX_INTERVAL  # at most MAX_INTERVAL apart
    assert offsets[-1] == WINDOW  # the last check is at the deadline: the wait stops there
    assert (found.online, found.checks, found.last_state) == (False, len(offsets), "running")
    assert world.ec2_reads[-1] == LAUNCHED + WINDOW  # the state at the deadline is read for the error message


def test_the_ec2_state_is_read_now_and_then_and_a_terminated_instance_ends_the_wait(world: World) -> None:
    world.gone_at = LAUNCHED + 40

    with pytest.raises(registration.Lost, match=rf"instance {INSTANCE} is terminated \(Client.UserInitiatedShut"):
        wait(world, expected=None)

    reads = [round(at - LAUNCHED, 6) for at in world.ec2_reads]
    assert reads == [registration.EC2_STATE_EVERY, 2 * registration.EC2_STATE_EVERY]
    assert world.checks[-1] == world.ec2_reads[-1]  # found at the first read after it went away


def test_a_learned_time_beyond_the_invocation_returns_without_checking(world: World) -> None:
    world.online_at = LAUNCHED + 400

    found, _ = wait(world, expected=400.0, time_left=300.0)

    assert (found.online, found.checks, found.info) == (False, 0, None)
    assert world.checks == [] and world.sleeps == []


def test_the_wait_returns_when_the_invocations_time_runs_short(world: World) -> None:
    ends = LAUNCHED + 3.5  # this invocation may wait 3.5 seconds more

    waiting = Waiting(launched=LAUNCHED, deadline=LAUNCHED + WINDOW, expected=None)
    found = registration.wait(INSTANCE, waiting, lambda: ends - world.now, clock=world.clock, sleep=world.sleep)

    assert world.offsets() == [0.0, 1.0, 2.0, 3.0]  # the next check would come after the time left
    assert (found.online, found.checks, found.waited) == (False, 4, 3.0)


def test_the_next_invocation_checks_at_once_and_past_the_fine_window_not_every_second(world: World) -> None:
    """The state machine invokes the wait again with the same launch: a new Waiting, measured from that launch."""
    world.now = LAUNCHED + 300
    ends = world.now + 20

    waiting = Waiting(launched=LAUNCHED, deadline=LAUNCHED + WINDOW, expected=None)
    found = registration.wait(INSTANCE, waiting, lambda: ends - world.now, clock=world.clock, sleep=world.sleep)

    assert world.offsets()[0] == 300.0
    assert world.sleeps[:3] == [1.5, 2.25, 3.375]
    assert found.online is False and found.checks == len(world.checks)


# --- learned times, in the jobs table ---------------------------------------------------------------------------------

TABLE = SETTINGS["jobs_table"]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(config.ENV_VAR, json.dumps(SETTINGS))  # modules/lambda_config rendered by Terraform
    config.load.cache_clear()
    with mock_aws():
        aws.reset()
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        aws.reset()
    config.load.cache_clear()


def test_a_registration_time_is_stored_per_ami_and_instance_type(table: Any) -> None:
    assert registration.learned("ami-1", "t3.large") is None

    assert registration.learn("ami-1", "t3.large", 23.46, None, LAUNCHED) is True

    assert table.get_item(Key={"job_id": "registration#ami-1#t3.large"})["Item"] == {
        "job_id": "registration#ami-1#t3.large",
        "seconds": Decimal("23.5"),
        "observed_at": Decimal(int(LAUNCHED)),
        "expires_at": Decimal(int(LAUNCHED) + registration.RETENTION_SECONDS),
    }
    assert registration.learned("ami-1", "t3.large") == registration.Learned(23.5, int(LAUNCHED))
    assert registration.learned("ami-1", "m6i.large") is None
    assert registration.learned("ami-2", "t3.large") is None


@pytest.mark.parametrize(
    ("seconds", "later", "written"),
    [
        (30.9, 60, False),  # within a second of the learned time: nothing to write
        (29.1, 60, False),
        (31.0, 60, True),  # a second or more away: the new time replaces it
        (29.0, 60, True),
        (30.0, registration.RELEARN_AGE - 1, False),
        (30.0, registration.RELEARN_AGE, True),  # a day old: rewritten, so that its item's expiry moves on
    ],
)
def test_a_learned_time_is_rewritten_only_when_it_moved_or_is_a_day_old(
    table: Any, seconds: float, later: int, written: bool
) -> None:
    registration.learn("ami-1", "t3.large", 30.0, None, LAUNCHED)
    previous = registration.learned("ami-1", "t3.large")

    assert registration.learn("ami-1", "t3.large", seconds, previous, LAUNCHED + later) is written

    expected = registration.Learned(seconds, int(LAUNCHED) + later) if written else previous
    assert registration.learned("ami-1", "t3.large") == expected


@pytest.mark.parametrize(
    ("seconds", "written"),
    [
        (45.0, False),  # a late first check says only "Online by 45 s": it must not push the learned 30 s later
        (31.5, False),
        (28.5, True),  # "Online by 28.5 s" is news: the learned time comes down
    ],
)
def test_a_time_known_only_as_an_upper_bound_may_lower_the_learned_time_never_raise_it(
    table: Any, seconds: float, written: bool
) -> None:
    registration.learn("ami-1", "t3.large", 30.0, None, LAUNCHED)
    previous = registration.learned("ami-1", "t3.large")

    assert registration.learn("ami-1", "t3.large", seconds, previous, LAUNCHED + 60, bounded=False) is written

    assert registration.learned("ami-1", "t3.large").seconds == (seconds if written else 30.0)


def test_a_wait_whose_first_check_sees_the_instance_knows_only_an_upper_bound(world: World) -> None:
    waiting = registration.Waiting(launched=LAUNCHED, deadline=LAUNCHED + 900, expected=None)
    assert not waiting.bounded
    waiting.last_negative = LAUNCHED + 5
    assert waiting.bounded
    assert waiting.registration_seconds(LAUNCHED + 6) == pytest.approx(5.5)


def test_a_start_and_a_launch_are_learned_apart(table: Any) -> None:
    """A stopped pool member's start registers sooner than a first boot: each boot kind has its own item."""
    assert registration.key("ami-1", "t3.large") == "registration#ami-1#t3.large"
    assert registration.key("ami-1", "t3.large", "start") == "registration#ami-1#t3.large#start"
    registration.learn("ami-1", "t3.large", 40.0, None, 1_000_000.0)
    registration.learn("ami-1", "t3.large", 8.0, None, 1_000_000.0, boot="start")

    assert registration.learned("ami-1", "t3.large").seconds == 40.0  # type: ignore[union-attr]
    assert registration.learned("ami-1", "t3.large", "start").seconds == 8.0  # type: ignore[union-attr]
    assert registration.learned("ami-1", "t3.large", "ready") is None
