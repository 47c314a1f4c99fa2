"""EC2's request throttling in the emulator: token buckets per account and Region, refilled in AWS time, with the
sizes and refill rates of "Request throttling for the Amazon EC2 API" (Amazon EC2 Developer Guide).

Every request of a throttled action takes one token from the action's request bucket; RunInstances, StartInstances,
StopInstances and TerminateInstances also take one token per instance from their resource bucket, and CreateFleet one
per instance of its total target capacity from RunInstances' resource bucket (instances launched, by whichever
action, draw on the same resource tokens). A request that
finds a bucket short answers RequestLimitExceeded (HTTP 503, "Request limit exceeded."), which the AWS SDKs retry
(botocore's standard mode: a throttling code). A refusal by the resource bucket still spends the request token.

Off unless `enable()` or LOCALCLOUD_EC2_THROTTLING=1 turns it on (the handler tests run moto at full speed);
faults.throttle gives one action a smaller bucket, on or off. The tests' own observing clients (metrics.is_observer)
are never throttled: they are not part of the system measured. Actions outside the table below are not throttled.
Refusals are counted per operation in metrics.throttled_requests().
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator import clock, faults, metrics
from emulator.ec2.exceptions import REQUEST_LIMIT_EXCEEDED

# (bucket maximum capacity, refill rate per second): the request token buckets of the actions the module calls.
REQUEST_BUCKETS: dict[str, tuple[float, float]] = {
    "RunInstances": (5, 2),  # uncategorized action
    "StartInstances": (5, 2),  # uncategorized action
    "TerminateInstances": (100, 5),  # uncategorized action
    "StopInstances": (50, 5),  # a mutating action
    "DescribeInstances": (100, 20),  # a non-mutating action, with a filter or pagination
    "CreateFleet": (50, 5),  # a mutating action
}
# DescribeInstances with neither a filter nor pagination draws on the smaller bucket of "unfiltered and unpaginated
# non-mutating actions". InstanceIds is neither (the guide names Filter and pagination only).
UNFILTERED_BUCKETS: dict[str, tuple[float, float]] = {"DescribeInstances": (50, 10)}
RESOURCE_BUCKETS: dict[str, tuple[float, float]] = {
    "RunInstances": (1000, 2),
    "TerminateInstances": (1000, 20),
    "StartInstances": (1000, 2),
    "StopInstances": (1000, 20),
}
# Actions that launch instances without a resource bucket of their own: they draw on RunInstances'.
SHARED_RESOURCE_BUCKETS: dict[str, str] = {"CreateFleet": "RunInstances"}

_EPSILON = 1e-9  # a token refilled over float seconds is a whole token
_lock = threading.Lock()
_buckets: dict[tuple[str, ...], _Bucket] = {}
_enabled: bool | None = None  # None: LOCALCLOUD_EC2_THROTTLING decides
now: Callable[[], float] = time.monotonic  # real seconds; the buckets' clock (tests freeze it)


@dataclass
class _Bucket:
    capacity: float
    refill: float  # tokens per AWS second
    tokens: float
    at: float  # now() of the last refill

    def take(self, count: float, at: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + clock.aws_seconds(at - self.at) * self.refill)
        self.at = at
        if self.tokens + _EPSILON < count:
            return False
        self.tokens = max(0.0, self.tokens - count)
        return True


def enable(on: bool | None = True) -> None:
    """Throttle EC2 as AWS does (True), never (False), or as LOCALCLOUD_EC2_THROTTLING says (None)."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    if _enabled is not None:
        return _enabled
    return os.environ.get("LOCALCLOUD_EC2_THROTTLING", "").lower() in ("1", "true", "on", "yes")


def _unfiltered(names: set[str]) -> bool:
    return not any(name.startswith("Filter.") or name in ("MaxResults", "NextToken") for name in names)


def _resources(operation: str, response: Any, names: set[str]) -> int:
    """How many resources the request acts on: the instances to launch, or the instance ids given."""
    if operation == "RunInstances":
        return int(response.querystring.get("MaxCount", ["1"])[0])
    if operation == "CreateFleet":
        return int(response.querystring.get("TargetCapacitySpecification.TotalTargetCapacity", ["1"])[0])
    return sum(1 for name in names if name.startswith("InstanceId."))


def _take(key: tuple[str, ...], limits: tuple[float, float], count: float) -> bool:
    capacity, refill = limits
    at = now()
    with _lock:
        bucket = _buckets.get((*key, str(capacity), str(refill)))
        if bucket is None:
            bucket = _buckets[(*key, str(capacity), str(refill))] = _Bucket(capacity, refill, capacity, at)
        return bucket.take(count, at)


def admitted(response: Any) -> bool:
    """Take this EC2 request's tokens: False if a bucket is short (the request is throttled)."""
    operation = response._get_action()
    override = faults.throttled_bucket(operation)
    on = enabled() and operation in REQUEST_BUCKETS
    if (override is None and not on) or metrics.is_observer(response.headers.get("User-Agent", "")):
        return True
    names = set(response.querystring)
    account, region = response.current_account, response.region
    kind = "unfiltered" if operation in UNFILTERED_BUCKETS and _unfiltered(names) else "request"
    limits = override or (UNFILTERED_BUCKETS if kind == "unfiltered" else REQUEST_BUCKETS)[operation]
    if not _take((account, region, operation, kind), limits, 1):
        return False
    resource_bucket = SHARED_RESOURCE_BUCKETS.get(operation, operation)
    if on and resource_bucket in RESOURCE_BUCKETS:
        count = _resources(operation, response, names)
        return _take((account, region, resource_bucket, "resource"), RESOURCE_BUCKETS[resource_bucket], count)
    return True


def call_action(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """EC2's request dispatch: a request a bucket refuses answers RequestLimitExceeded and goes no further."""

    def dispatch(self: Any) -> Any:
        if admitted(self):
            return original(self)
        metrics.record_throttled(f"ec2:{self._get_action()}")
        return REQUEST_LIMIT_EXCEEDED.answer(self)

    return dispatch


def reset() -> None:
    """Every bucket full again (a new cloud)."""
    with _lock:
        _buckets.clear()
