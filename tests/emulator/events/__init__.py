"""EventBridge in the emulator: delivery to Lambda, Step Functions and SQS targets (``models``), events that AWS
services emit (``emit``), and rate schedules that fire (``scheduler``)."""

from __future__ import annotations

from emulator.events.models import Delivery, clear_deliveries, deliveries, emit
from emulator.events.scheduler import rate_seconds

__all__ = ["Delivery", "clear_deliveries", "deliveries", "emit", "rate_seconds"]
