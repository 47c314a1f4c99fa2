"""EC2 instances in the emulator: the stop and start walk moto skips, hibernation, capacity on start, the disk
an instance loses at terminate, and the state-change events of every instance.

moto moves an instance to `stopped` or `running` at once. EC2 walks it: StopInstances running -> stopping -> stopped
after `stop_delay()` AWS seconds (LOCALCLOUD_STOP_DELAY_SECONDS, default 15), StartInstances stopped -> pending ->
running after `start_delay()` (LOCALCLOUD_START_DELAY_SECONDS, default 20); the answer names the first state, and a
delay of 0 reaches the last before the answer. The SSM Agent is ConnectionLost from the stop until it reconnects after
the start (``emulator.ssm.agent``). Requests EC2 refuses:

- StartInstances of a stopping, shutting-down or terminated instance, StopInstances of a pending, shutting-down or
  terminated one: IncorrectInstanceState (the whole request fails, nothing changes);
- StopInstances of a Spot Instance (of a one-time request, as every Spot Instance an instant fleet launches):
  UnsupportedOperation;
- StopInstances with Hibernate=true of an instance launched without HibernationOptions Configured=true (from the
  request or its launch template): UnsupportedHibernationConfiguration;
- StartInstances when faults.no_capacity_to_start says so: InsufficientInstanceCapacity (HTTP 500).

Starting a running or pending instance, or stopping a stopped or stopping one, changes nothing and answers its state.
A hibernated instance keeps its memory: here there is nothing to keep but its state. Its disk, the SSM Agent's
per-instance directory tree, persists across stop and start and goes at terminate.

Every state an instance enters is announced, in order, with an "EC2 Instance State-change Notification"
(``emulator.ec2.events``): a launch pending then running, a stop stopping then stopped, a start pending then running,
a terminate shutting-down then terminated. moto launches instances running and terminates them at once, so the first
state of a launch and of a terminate is announced right before the second.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.ec2.models.instances import StateReason
from moto.ec2.utils import random_spot_request_id

from emulator import clock, faults
from emulator.ec2 import events
from emulator.ec2.exceptions import (
    IncorrectInstanceStateToStart,
    IncorrectInstanceStateToStop,
    OneTimeSpotInstanceStop,
    ServerError,
    UnsupportedHibernationConfiguration,
    insufficient_capacity,
)

# Instance state codes (the low byte of InstanceState.Code).
PENDING, RUNNING, SHUTTING_DOWN, TERMINATED, STOPPING, STOPPED = 0, 16, 32, 48, 64, 80
CODES = {"pending": PENDING, "running": RUNNING, "shutting-down": SHUTTING_DOWN, "terminated": TERMINATED}
CODES |= {"stopping": STOPPING, "stopped": STOPPED}
NOT_STARTABLE = {"stopping", "shutting-down", "terminated"}
NOT_STOPPABLE = {"pending", "shutting-down", "terminated"}

_lock = threading.RLock()  # state changes of the walks, against terminate
_timers: dict[str, threading.Timer] = {}
_termination_reasons: dict[str, StateReason] = {}  # instance id -> why EC2 (not its user) is terminating it


def start_delay() -> float:
    """AWS seconds from StartInstances to `running` (LOCALCLOUD_START_DELAY_SECONDS, default 20)."""
    return float(os.environ.get("LOCALCLOUD_START_DELAY_SECONDS", "20"))


def stop_delay() -> float:
    """AWS seconds from StopInstances to `stopped` (LOCALCLOUD_STOP_DELAY_SECONDS, default 15)."""
    return float(os.environ.get("LOCALCLOUD_STOP_DELAY_SECONDS", "15"))


@dataclass(frozen=True)
class Change:
    """One instance's line in a StoppingInstances / StartingInstances answer."""

    instance_id: str
    previous: str
    current: str

    def view(self) -> dict[str, Any]:
        return {
            "InstanceId": self.instance_id,
            "CurrentState": {"Code": CODES[self.current], "Name": self.current},
            "PreviousState": {"Code": CODES[self.previous], "Name": self.previous},
        }


def _set_state(instance: Any, name: str) -> None:
    instance._state.name, instance._state.code = name, CODES[name]
    events.state_changed(instance, name)


def _after(aws_seconds: float, instance: Any, expected: str, finish: Callable[[], None]) -> None:
    """Run `finish` in `aws_seconds` AWS seconds if the instance is still `expected` then (terminate stops the walk);
    at once, before the answer, for a delay of 0 (a test's DescribeInstances right after sees the end state)."""
    if aws_seconds <= 0:
        with _lock:
            finish()
        return

    def run() -> None:
        with _lock:
            _timers.pop(instance.id, None)
            if instance._state.name == expected:
                finish()

    timer = threading.Timer(clock.real_seconds(aws_seconds), run)
    timer.daemon = True
    with _lock:
        previous = _timers.pop(instance.id, None)
        if previous is not None:
            previous.cancel()
        _timers[instance.id] = timer
    timer.start()


def hibernation_configured(instance: Any) -> bool:
    options = instance.hibernation_options or {}
    return str(options.get("Configured", "")).lower() == "true"


def stop_instances(backend: Any, instance_ids: list[str], hibernate: bool) -> list[Change]:
    """StopInstances: check every instance first (EC2 refuses the whole request), then walk the running ones."""
    with _lock:
        instances = backend.get_multi_instances_by_id(instance_ids)
        for instance in instances:
            if instance._state.name in NOT_STOPPABLE:
                raise IncorrectInstanceStateToStop(instance.id)
            if instance.lifecycle == "spot":
                raise OneTimeSpotInstanceStop(instance.id)
            if hibernate and not hibernation_configured(instance):
                raise UnsupportedHibernationConfiguration(instance.id)
        return [_stop(instance, hibernate) for instance in instances]


def _stop(instance: Any, hibernate: bool) -> Change:
    previous = instance._state.name
    if previous != "running":
        return Change(instance.id, previous, previous)
    instance.stop()  # moto's own: network interfaces, the user-initiated reason
    if hibernate:
        instance.state_reason = StateReason(
            "Client.UserInitiatedHibernate: User initiated hibernate", "Client.UserInitiatedHibernate"
        )
    _set_state(instance, "stopping")
    _after(stop_delay(), instance, "stopping", lambda: _set_state(instance, "stopped"))
    return Change(instance.id, previous, "stopping")


def start_instances(backend: Any, instance_ids: list[str]) -> list[Change] | ServerError:
    """StartInstances: check every instance first (EC2 refuses the whole request), then walk the stopped ones; the
    agent reconnects once the instance runs (ssm.agent.restarted)."""
    from emulator.ssm import agent

    with _lock:
        instances = backend.get_multi_instances_by_id(instance_ids)
        for instance in instances:
            if instance._state.name in NOT_STARTABLE:
                raise IncorrectInstanceStateToStart(instance.id)
        for instance in instances:
            if instance._state.name == "stopped" and faults.take_start_capacity_error(instance):
                return _no_capacity(backend, instance)
        changes = []
        for instance in instances:
            previous = instance._state.name
            if previous != "stopped":
                changes.append(Change(instance.id, previous, previous))
                continue
            instance.start()  # moto's own: network interfaces, the reason cleared
            _set_state(instance, "pending")
            agent.restarted(instance.id, start_delay())
            _after(start_delay(), instance, "pending", lambda instance=instance: _set_state(instance, "running"))
            changes.append(Change(instance.id, previous, "pending"))
        return changes


def _no_capacity(backend: Any, instance: Any) -> ServerError:
    zone = instance.placement.zone or f"{backend.region_name}a"
    zones = [z.name for z in backend.describe_availability_zones() if z.name != zone]
    return insufficient_capacity(instance.instance_type, zone, zones)


def apply_launch_template_options(backend: Any, reservation: Any, kwargs: dict[str, Any]) -> None:
    """An instance launched from a launch template gets its HibernationOptions unless the request gave its own, as in
    EC2 (moto ignores the template's)."""
    if not kwargs.get("launch_template") or kwargs.get("hibernation_options"):
        return
    options = backend._get_template_from_args(kwargs["launch_template"]).data.get("HibernationOptions")
    if options:
        for instance in reservation.instances:
            instance.hibernation_options = dict(options)


def run_instances(original: Callable[..., Any]) -> Callable[..., Any]:
    """RunInstances (and every launch made through it: CreateFleet's): the SSM Agent's part (instance profiles, the
    agent boots: ssm.agent.run_instances), the launch template's HibernationOptions, a Spot Instance's request id
    and its interruption when faults.spot_interruptions draws one, and the launch's state-change events."""
    from emulator.ec2 import spot
    from emulator.ssm import agent

    launch = agent.run_instances(original)

    def run_instances(self: Any, image_id: str, count: int, user_data: Any, security_group_names: Any, **kwargs: Any):
        reservation = launch(self, image_id, count, user_data, security_group_names, **kwargs)
        apply_launch_template_options(self, reservation, kwargs)
        for instance in reservation.instances:
            if instance.lifecycle == "spot" and not getattr(instance, "spot_instance_request_id", None):
                instance.spot_instance_request_id = random_spot_request_id()
            events.state_changed(instance, "pending")
            events.state_changed(instance, "running")
            if instance.lifecycle == "spot":
                spot.launched(instance)
        return reservation

    return run_instances


def terminate_by_ec2(backend: Any, instance_id: str, reason: StateReason) -> bool:
    """EC2 itself terminates the instance (a Spot interruption): as TerminateInstances does, with `reason` as its
    StateReason. False if it was already shutting down or terminated."""
    with _lock:
        instance = backend.get_instance(instance_id)
        if instance._state.name in ("shutting-down", "terminated"):
            return False
        _termination_reasons[instance_id] = reason
        try:
            backend.terminate_instances([instance_id])
        finally:
            _termination_reasons.pop(instance_id, None)
    return True


def terminate_instances(original: Callable[..., Any]) -> Callable[..., Any]:
    """TerminateInstances: moto's own for the instances not yet terminated, then their walks stop and their disks go
    (ssm.agent.discard). An instance already terminated is accepted again and left as it is, as EC2 does (moto would
    terminate it a second time, and fail on its network interface, deleted by the first)."""
    from emulator.ssm import agent

    def terminate_instances(self: Any, instance_ids: list[str]) -> Any:
        if not instance_ids:
            return original(self, instance_ids)  # moto's InvalidParameterCombination
        with _lock:
            instances = self.get_multi_instances_by_id(instance_ids)  # InvalidInstanceID.NotFound for an unknown id
            live = [instance.id for instance in instances if instance._state.name != "terminated"]
            terminated = (
                {instance.id: (instance, previous) for instance, previous in original(self, live)} if live else {}
            )
            for instance_id, (instance, _) in terminated.items():
                timer = _timers.pop(instance_id, None)
                if timer is not None:
                    timer.cancel()
                reason = _termination_reasons.get(instance_id)
                if reason is not None:
                    instance.state_reason = reason
                    instance._reason = "Service initiated"
                events.state_changed(instance, "shutting-down")
                events.state_changed(instance, "terminated")
        for instance_id in terminated:
            agent.discard(instance_id)
        return [terminated.get(instance.id) or (instance, copy.copy(instance._state)) for instance in instances]

    return terminate_instances


def reset() -> None:
    """Cancel every walk and Spot interruption in progress (the backends are being emptied)."""
    from emulator.ec2 import spot

    with _lock:
        timers = list(_timers.values())
        _timers.clear()
    for timer in timers:
        timer.cancel()
    spot.reset()
