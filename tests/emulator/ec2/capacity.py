"""EC2 capacity pools in the emulator: how many more instances EC2 Fleet can launch per purchase option (lifecycle
"spot" or "on-demand"), instance type and Availability Zone. Every pool is unlimited unless
``faults.fleet_capacity`` limits it; a launch takes one instance of its pool's capacity, and a pool at 0 answers
InsufficientInstanceCapacity for that override (``ec2.fleets``).

A limit names any of lifecycle, instance type and zone (None: every one) and the instances still available (None:
unlimited again). The latest limit that names a pool governs it: ``fleet_capacity("spot", available=0)`` then
``fleet_capacity("spot", "t3.large", "us-east-1a", available=1)`` leaves one Spot t3.large in us-east-1a and no other
Spot capacity.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from emulator.ec2.exceptions import ServerError, insufficient_capacity

SPOT, ON_DEMAND = "spot", "on-demand"
NO_SPOT_CAPACITY = "There is no Spot capacity available that matches your request."


@dataclass
class _Limit:
    lifecycle: str | None
    instance_type: str | None
    zone: str | None
    available: int | None  # None: unlimited

    def names(self, lifecycle: str, instance_type: str, zone: str) -> bool:
        return all(
            wanted is None or wanted == value
            for wanted, value in ((self.lifecycle, lifecycle), (self.instance_type, instance_type), (self.zone, zone))
        )


_lock = threading.Lock()
_limits: list[_Limit] = []


def limit(lifecycle: str | None, instance_type: str | None, zone: str | None, available: int | None) -> None:
    """Pools named by (lifecycle, instance_type, zone) can launch `available` more instances (None: unlimited)."""
    if lifecycle not in (None, SPOT, ON_DEMAND):
        raise ValueError(f"lifecycle must be {SPOT!r}, {ON_DEMAND!r} or None, got {lifecycle!r}")
    if available is not None and available < 0:
        raise ValueError("available must be >= 0 or None")
    with _lock:
        _limits.append(_Limit(lifecycle, instance_type, zone, available))


def _governing(lifecycle: str, instance_type: str, zone: str) -> _Limit | None:
    return next((rule for rule in reversed(_limits) if rule.names(lifecycle, instance_type, zone)), None)


def remaining(lifecycle: str, instance_type: str, zone: str) -> float:
    """How many more instances the pool can launch (math.inf: unlimited)."""
    with _lock:
        rule = _governing(lifecycle, instance_type, zone)
        return math.inf if rule is None or rule.available is None else float(rule.available)


def take(lifecycle: str, instance_type: str, zone: str) -> bool:
    """Take one instance of the pool's capacity: False if it has none left."""
    with _lock:
        rule = _governing(lifecycle, instance_type, zone)
        if rule is None or rule.available is None:
            return True
        if rule.available <= 0:
            return False
        rule.available -= 1
        return True


def no_capacity(lifecycle: str, instance_type: str, zone: str, other_zones: list[str]) -> ServerError:
    """The error of an override whose pool has no capacity, worded as EC2 words it for each purchase option."""
    if lifecycle == SPOT:
        return ServerError("InsufficientInstanceCapacity", NO_SPOT_CAPACITY, 500)
    return insufficient_capacity(instance_type, zone, other_zones)


def reset() -> None:
    """Every pool unlimited again."""
    with _lock:
        _limits.clear()
