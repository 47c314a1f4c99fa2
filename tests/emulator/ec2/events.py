"""The events EC2 sends to EventBridge in the emulator, with AWS's shape (source "aws.ec2", the instance's ARN in
resources): "EC2 Instance State-change Notification" for every state an instance enters, and the Spot Instance
"EC2 Spot Instance Interruption Warning" and "EC2 Instance Rebalance Recommendation".

They go through ``emulator.events.emit`` like every AWS service's event: only ENABLED rules whose pattern matches
receive them, so a cloud without such a rule pays for a put and nothing more. ``faults.drop_events`` loses them as it
loses any service event. A test may send them elsewhere with ``set_event_sink``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STATE_CHANGE = "EC2 Instance State-change Notification"
INTERRUPTION_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE_RECOMMENDATION = "EC2 Instance Rebalance Recommendation"

EventSink = Callable[..., Any]
_event_sink: EventSink | None = None


def set_event_sink(sink: EventSink | None) -> None:
    """Where EC2's events go: a callable with emulator.events.emit's signature; None: that function."""
    global _event_sink
    _event_sink = sink


def instance_arn(instance: Any) -> str:
    backend = instance.ec2_backend
    return f"arn:aws:ec2:{backend.region_name}:{backend.account_id}:instance/{instance.id}"


def _emit(instance: Any, detail_type: str, detail: dict[str, Any]) -> None:
    sink = _event_sink
    if sink is None:
        from emulator.events import emit as sink
    backend = instance.ec2_backend
    sink("aws.ec2", detail_type, detail, backend.account_id, backend.region_name, resources=[instance_arn(instance)])


def state_changed(instance: Any, state: str) -> None:
    """The instance entered `state` (pending, running, stopping, stopped, shutting-down or terminated)."""
    _emit(instance, STATE_CHANGE, {"instance-id": instance.id, "state": state})


def interruption_warning(instance: Any) -> None:
    """The two-minute warning before EC2 interrupts a Spot Instance (this emulator's interruptions terminate)."""
    _emit(instance, INTERRUPTION_WARNING, {"instance-id": instance.id, "instance-action": "terminate"})


def rebalance_recommendation(instance: Any) -> None:
    """EC2's signal that a Spot Instance is at elevated risk of interruption."""
    _emit(instance, REBALANCE_RECOMMENDATION, {"instance-id": instance.id})
