"""Seeing a new instance come Online in Systems Manager within about a second, with few requests.

No event announces that an EC2 instance's SSM Agent has registered, so readiness is found by asking
(DescribeInstanceInformation). Asking every second for the whole boot would cost a request per second of boot; asking
with growing intervals sees readiness late. Instead, how long an AMI takes to register on an instance type is
learned: the jobs table keeps, per (AMI, instance type), the last registration time seen (one small item,
`registration#<ami>#<type>`). A job sleeps until just before that time, then checks every second, so a known AMI
costs two or three checks and is seen within a second. An AMI never seen before is checked every second for its
first minute (then less often, up to every MAX_INTERVAL seconds), and teaches the next job.

The wait runs inside one invocation of the wait_online function (it returns before the invocation's time is up, and
the state machine invokes it again only for registrations slower than that): no error, no Retry, no transitions that
grow with the boot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from . import aws
from .config import load

CHECK_INTERVAL = 1.0  # seconds between checks around the expected time: readiness is seen within this
EARLY = 1.0  # the first check comes this long before the learned registration time
FINE_WINDOW = 60.0  # checks stay CHECK_INTERVAL apart this long, then grow
GROWTH = 1.5
MAX_INTERVAL = 10.0
EC2_STATE_EVERY = 30.0  # while it waits, how often the instance's EC2 state is read (a terminated instance ends it)
RELEARN_DIFFERENCE = 1.0  # a registration time this far from the learned one replaces it
RELEARN_AGE = 24 * 3600  # a learned time older than this is rewritten (its item's expiry moves on)
RETENTION_SECONDS = 30 * 24 * 3600
GONE_STATES = ("shutting-down", "terminated", "stopping", "stopped")


# How the instance became available (acquire's `instance.boot`): a launch and a start of a stopped instance register
# after different times, learned apart; a ready instance (a warm pool's) is checked at once and teaches nothing.
LEARNED_BOOTS = ("launch", "start")


def key(image_id: str, instance_type: str, boot: str = "launch") -> str:
    """The item of a learned registration time: `registration#<ami>#<type>` for a launch, `...#start` for a start."""
    base = f"registration#{image_id}#{instance_type}"
    return base if boot == "launch" else f"{base}#{boot}"


@dataclass(frozen=True)
class Learned:
    seconds: float  # launch -> Online
    observed_at: int


def learned(image_id: str, instance_type: str, boot: str = "launch") -> Learned | None:
    item = aws.table(load().jobs_table).get_item(Key={"job_id": key(image_id, instance_type, boot)}).get("Item")
    if not item or "seconds" not in item:
        return None
    return Learned(float(item["seconds"]), int(item.get("observed_at", 0)))


def learn(
    image_id: str,
    instance_type: str,
    seconds: float,
    previous: Learned | None,
    now: float,
    bounded: bool = True,
    boot: str = "launch",
) -> bool:
    """Store a registration time if it differs from the learned one by RELEARN_DIFFERENCE (or that one is old); True
    if written. An estimate that is only an upper bound (`bounded` False: the first check already saw the instance
    Online, e.g. a wait that started late under load) may lower the learned time, never raise it."""
    if previous and now - previous.observed_at < RELEARN_AGE:
        lowered_by = previous.seconds - seconds
        moved = abs(lowered_by) if bounded else lowered_by  # an upper bound only ever lowers the learned time
        if moved < RELEARN_DIFFERENCE:
            return False
    aws.table(load().jobs_table).put_item(
        Item={
            "job_id": key(image_id, instance_type, boot),
            "seconds": Decimal(str(round(seconds, 1))),
            "observed_at": int(now),
            "expires_at": int(now) + RETENTION_SECONDS,
        }
    )
    return True


@dataclass
class Waiting:
    """One wait for one instance: when to check next, what the checks found."""

    launched: float  # epoch seconds
    deadline: float  # registration window's end, epoch seconds
    expected: float | None  # learned seconds from launch to Online
    checks: int = 0
    last_negative: float | None = None
    fine_until: float = 0.0
    interval: float = CHECK_INTERVAL
    ec2_read_at: float = field(default=0.0)

    def first_check(self, now: float) -> float:
        expected = self.expected or 0.0
        start = max(now, self.launched + expected - EARLY)
        self.fine_until = self.launched + expected + FINE_WINDOW
        self.ec2_read_at = start
        return start

    def next_check(self, now: float) -> float:
        if now >= self.fine_until:
            self.interval = min(self.interval * GROWTH, MAX_INTERVAL)
        return min(now + self.interval, self.deadline)

    @property
    def bounded(self) -> bool:
        """Whether a check missed before one saw the instance Online (the registration time is then known to within
        a check interval, not only bounded from above)."""
        return self.last_negative is not None

    def registration_seconds(self, online_at: float) -> float:
        """The registration time to learn: midway between the last check that missed and the one that saw it; when
        the first check already saw it, a little earlier than that (the next job starts checking sooner)."""
        if self.last_negative is None:
            return max(0.0, online_at - self.launched - EARLY)
        return max(0.0, (self.last_negative + online_at) / 2 - self.launched)


def agent_information(instance_id: str) -> dict[str, Any] | None:
    """What Systems Manager knows of the instance's agent (PingStatus Online, ConnectionLost...), or None when it is
    not registered: one DescribeInstanceInformation."""
    found = aws.client("ssm").describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])[
        "InstanceInformationList"
    ]
    info: dict[str, Any] | None = found[0] if found else None
    return info


def online_information(instance_id: str) -> dict[str, Any] | None:
    """The agent's information when it is Online, else None."""
    info = agent_information(instance_id)
    return info if info is not None and info.get("PingStatus") == "Online" else None


class Ec2State(NamedTuple):
    """What the wait reads of the instance in EC2: its state's name, the state reason's message, and whether it is a
    spot instance (a spot instance gone is an interruption: the build restarts on another instance)."""

    name: str
    reason: str = ""
    spot: bool = False


def ec2_state(instance_id: str) -> Ec2State:
    """The instance's EC2 state; 'not visible yet' while EC2 does not list a new instance."""
    try:
        reservations = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if aws.error_code(exc) == "InvalidInstanceID.NotFound":
            return Ec2State("not visible yet")
        raise
    instance = reservations[0]["Instances"][0]
    reason = (instance.get("StateReason") or {}).get("Message", "")
    return Ec2State(instance["State"]["Name"], reason, instance.get("InstanceLifecycle") == "spot")


class Lost(Exception):
    """The instance stopped or terminated while it was awaited (`state`: what EC2 said)."""

    def __init__(self, message: str, state: Ec2State) -> None:
        super().__init__(message)
        self.state = state


@dataclass
class Outcome:
    online: bool
    info: dict[str, Any] | None
    checks: int
    waited: float
    last_state: str = ""


def wait(
    instance_id: str,
    waiting: Waiting,
    time_left: Callable[[], float],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Check until the instance is Online, the registration window ends or the invocation's time (time_left(),
    seconds) runs short; raises Lost if the instance goes away meanwhile."""
    started = clock()
    check_at = waiting.first_check(started)
    state = ""
    while True:
        pause = check_at - clock()
        if pause > 0:
            if pause > time_left():
                return Outcome(False, None, waiting.checks, clock() - started, state)
            sleep(pause)
        now = clock()
        waiting.checks += 1
        info = online_information(instance_id)
        if info is not None:
            return Outcome(True, info, waiting.checks, clock() - started, "running")
        waiting.last_negative = now
        if now - waiting.ec2_read_at >= EC2_STATE_EVERY or now >= waiting.deadline:
            waiting.ec2_read_at = now
            read = ec2_state(instance_id)
            state = read.name
            if state in GONE_STATES:
                raise Lost(f"instance {instance_id} is {state} ({read.reason or 'no reason given'})", read)
        if now >= waiting.deadline:
            return Outcome(False, None, waiting.checks, clock() - started, state or "unknown")
        check_at = waiting.next_check(now)
