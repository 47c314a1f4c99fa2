"""Spot Instance interruptions in the emulator, as EC2 interrupts: the "EC2 Spot Instance Interruption Warning" event,
then, two minutes later in AWS time (``emulator.clock``), the instance terminated by EC2 with the StateReason
Server.SpotInstanceTermination (its state-change events follow, as for any terminate). A lost warning (EventBridge
delivery is best effort) leaves only the termination. The SSM Agent dies with its instance: a command it was running
is never reported finished by it (``emulator.ssm.agent``).

``interrupt`` (faults.interrupt_spot) interrupts one instance; ``draw`` (faults.spot_interruptions) makes every Spot
Instance launched afterwards interrupted with a probability, at a random moment of a window after its launch.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Any

from moto.ec2.models.instances import StateReason

from emulator import clock
from emulator.ec2 import events

LOG = logging.getLogger("emulator.ec2")

NOTICE_SECONDS = 120.0  # AWS's two-minute warning
SPOT_TERMINATION = StateReason(
    "Server.SpotInstanceTermination: Spot instance termination", "Server.SpotInstanceTermination"
)


@dataclass
class _Draw:
    """faults.spot_interruptions: each Spot launch is interrupted with probability `rate`, `after` AWS seconds after
    its launch (uniform in the window)."""

    rate: float
    random: random.Random
    after: tuple[float, float]


_lock = threading.Lock()
_timers: dict[str, threading.Timer] = {}
_draw: _Draw | None = None


def find_instance(instance_id: str) -> Any:
    """The moto instance `instance_id` in whichever account and Region launched it."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ec2.models import ec2_backends

    for account in list(ec2_backends.values()):
        for backend in list(account.values()):
            for reservation in list(backend.reservations.values()):
                for instance in reservation.instances:
                    if instance.id == instance_id:
                        return instance
    raise InvalidInstanceIdError(instance_id)


def _spot(instance_id: str) -> Any:
    instance = find_instance(instance_id)
    if instance.lifecycle != "spot":
        raise ValueError(f"{instance_id} is not a Spot Instance (EC2 interrupts Spot Instances only)")
    return instance


def interrupt(instance_id: str, warning: bool = True, notice_seconds: float = NOTICE_SECONDS) -> None:
    """Interrupt the Spot Instance: its warning now (unless lost), its termination `notice_seconds` AWS seconds later
    (at once for 0). ValueError for an instance that is not a Spot Instance; nothing for one already shutting down or
    terminated (there is nothing left to interrupt)."""
    instance = _spot(instance_id)
    if instance._state.name in ("shutting-down", "terminated"):
        return
    if warning:
        events.interruption_warning(instance)
    _schedule(instance, notice_seconds, lambda: _terminate(instance))


def rebalance_recommendation(instance_id: str) -> None:
    """EC2's rebalance recommendation for the Spot Instance (an event only: nothing else happens to it)."""
    events.rebalance_recommendation(_spot(instance_id))


def _terminate(instance: Any) -> None:
    from emulator.ec2 import instances

    if instances.terminate_by_ec2(instance.ec2_backend, instance.id, SPOT_TERMINATION):
        LOG.info("spot instance %s interrupted", instance.id)


def _schedule(instance: Any, aws_seconds: float, action: Any) -> None:
    def run() -> None:
        with _lock:
            if _timers.get(instance.id) is not timer:
                return  # cancelled by a reset
            _timers.pop(instance.id, None)
        try:
            action()
        except Exception:
            LOG.exception("spot interruption of %s failed", instance.id)

    if aws_seconds <= 0:
        action()
        return
    timer = threading.Timer(clock.real_seconds(aws_seconds), run)
    timer.daemon = True
    with _lock:
        previous = _timers.pop(instance.id, None)
        _timers[instance.id] = timer
    if previous is not None:
        previous.cancel()
    timer.start()


def draw(rate: float, seed: int, after_seconds: tuple[float, float]) -> None:
    """Each Spot Instance launched from now on is interrupted (with its warning) with probability `rate`, at a random
    moment `after_seconds` (low, high) AWS seconds after its launch; the draws are reproducible from `seed`."""
    global _draw
    low, high = after_seconds
    if not 0.0 <= rate <= 1.0 or low < 0 or high < low:
        raise ValueError("rate must be in [0, 1] and after_seconds a (low, high) window of AWS seconds, low >= 0")
    with _lock:
        _draw = _Draw(rate, random.Random(seed), (float(low), float(high)))


def launched(instance: Any) -> None:
    """A Spot Instance was launched: interrupt it later if the current draw says so."""
    with _lock:
        current = _draw
        if current is None:
            return
        hit = current.random.random() < current.rate
        delay = current.random.uniform(*current.after)
    if hit:
        _schedule(instance, delay, lambda: interrupt(instance.id))


def clear() -> None:
    """No more drawn interruptions, and none scheduled left (faults.clear)."""
    global _draw
    with _lock:
        _draw = None
        timers = list(_timers.values())
        _timers.clear()
    for timer in timers:
        timer.cancel()


def reset() -> None:
    clear()
