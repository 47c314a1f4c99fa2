"""EventBridge schedules in the emulator: a daemon thread fires ENABLED ``rate(...)`` rules with the "Scheduled Event"
envelope, the period scaled by ``emulator.clock`` (minimum 1 s); ``cron(...)`` schedules are logged and not fired.

``start()`` (idempotent; restarts a stopped scheduler) and ``stop()``: the local cloud's server runs it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import Any

from moto.core.utils import unix_time
from moto.events.models import Rule, events_backends

from emulator import clock
from emulator.events.models import deliver

LOG = logging.getLogger("emulator.events")

SCHEDULER_TICK_SECONDS = 0.1
MIN_SCHEDULE_PERIOD_SECONDS = 1.0
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

_lock = threading.Lock()
_scheduler: _Scheduler | None = None


def start() -> None:
    """Start the scheduler thread (idempotent; restarts a stopped scheduler)."""
    global _scheduler
    with _lock:
        if _scheduler is None or not _scheduler.is_alive():
            _scheduler = _Scheduler()
            _scheduler.start()


def stop() -> None:
    """Stop the scheduler thread (deliveries already in flight finish on their own)."""
    global _scheduler
    with _lock:
        if _scheduler is not None:
            _scheduler.stop()
            _scheduler = None


def rate_seconds(expression: str) -> float | None:
    """The nominal period of a ``rate(N unit)`` expression, None for anything else."""
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def _scheduled_rules() -> list[Rule]:
    rules = []
    for account in list(events_backends.values()):
        for backend in list(account.values()):
            for bus in list(backend.event_buses.values()):
                rules += [r for r in list(bus.rules.values()) if r.scheduled_expression and r.state == "ENABLED"]
    return rules


def _scheduled_event(rule: Rule) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": unix_time(),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
        "ingestion-time": unix_time(),
    }


class _Scheduler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="emulator-events-scheduler", daemon=True)
        self._stopped = threading.Event()
        self._next_fire: dict[tuple[str, str], float] = {}
        self._warned: set[tuple[str, str]] = set()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stopped.wait(SCHEDULER_TICK_SECONDS):
            try:
                self.tick(time.monotonic())
            except Exception:
                LOG.exception("scheduler tick failed")

    def tick(self, now: float) -> None:
        seen = set()
        for rule in _scheduled_rules():
            key = (rule.arn, rule.scheduled_expression)
            nominal = rate_seconds(rule.scheduled_expression)
            if nominal is None:
                if key not in self._warned:
                    LOG.warning("rule %s: schedule %r is not emulated (only rate(...) is)", *key)
                    self._warned.add(key)
                continue
            seen.add(key)
            period = max(MIN_SCHEDULE_PERIOD_SECONDS, clock.real_seconds(nominal))
            due = self._next_fire.setdefault(key, now + period)
            if now >= due:
                self._next_fire[key] = now + period
                deliver(rule, _scheduled_event(rule))
        for stale in set(self._next_fire) - seen:  # deleted or disabled: a re-enabled rule starts a new period
            del self._next_fire[stale]
