"""EventBridge for the local cloud: rules that deliver to Lambda and Step Functions, and schedules that fire.

moto's ``Rule.send_to_targets`` raises NotImplementedError for Lambda and Step Functions targets and ignores the
rule's state. After ``install()``:

- only ENABLED rules with an event pattern receive put events; matching events go to every target: Lambda targets
  are invoked asynchronously (invocation type Event) through the Lambda backend and Step Functions targets start an
  execution, both in a daemon thread; SQS targets get the message at once; all three with the target's Input,
  InputPath or InputTransformer applied; moto keeps delivering to the other targets it supports (CloudWatch Logs,
  event buses, archives, API destinations);
- a daemon scheduler thread fires ENABLED ``rate(...)`` rules with the "Scheduled Event" envelope, the period
  scaled by ``localcloud.clock`` (minimum 1 s); ``cron(...)`` schedules are logged and not fired.

Every delivery is recorded (``deliveries()``); a failing target is logged and recorded, never raised.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from jsonpath_ng.ext import parse as parse_jsonpath
from moto.core.utils import iso_8601_datetime_without_milliseconds, unix_time, utcfromtimestamp
from moto.events.models import EventsBackend, Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

from localcloud import clock

LOG = logging.getLogger("localcloud.events")

SCHEDULER_TICK_SECONDS = 0.1
MIN_SCHEDULE_PERIOD_SECONDS = 1.0
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MOTO_TARGET_SERVICES = ("logs", "events")  # CloudWatch Logs, event buses, archives, API destinations

_install_lock = threading.Lock()
_installed = False
_original_send_to_targets = Rule.send_to_targets
_deliveries: list[Delivery] = []
_deliveries_lock = threading.Lock()
_scheduler: _Scheduler | None = None


@dataclass
class Delivery:
    """One event handed to one target. ``finished`` is set once the (asynchronous) delivery is over."""

    rule_arn: str
    target_id: str
    target_arn: str
    payload: Any
    time: float = field(default_factory=time.time)
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event, repr=False)


def install() -> None:
    """Patch moto's EventBridge and start the scheduler (idempotent; restarts a stopped scheduler)."""
    global _installed, _scheduler
    with _install_lock:
        if not _installed:
            Rule.send_to_targets = _send_to_targets
            _installed = True
        if _scheduler is None or not _scheduler.is_alive():
            _scheduler = _Scheduler()
            _scheduler.start()


def stop() -> None:
    """Stop the scheduler thread (deliveries already in flight finish on their own)."""
    global _scheduler
    with _install_lock:
        if _scheduler is not None:
            _scheduler.stop()
            _scheduler = None


def emit(
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    account: str,
    region: str,
    resources: tuple[str, ...] | list[str] = (),
) -> str | None:
    """Put one event on the default bus of ``account``/``region`` as an AWS service would; returns its id (None if it
    was lost: ``faults.drop_events``)."""
    from localcloud import faults

    if faults.take_dropped_event(detail_type, detail):
        LOG.info("dropped %s event %r (faults.drop_events)", source, detail_type)
        return None
    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "Resources": list(resources)}
    backend: EventsBackend = events_backends[account][region]
    try:
        [result] = backend.put_events([entry])
    except Exception:
        LOG.exception("could not put %s event %r", source, detail_type)
        return None
    if "ErrorCode" in result:
        LOG.error("%s event %r rejected: %s", source, detail_type, result.get("ErrorMessage"))
    return result.get("EventId")


def deliveries(target_arn: str | None = None) -> list[Delivery]:
    """Deliveries so far, oldest first (only those to ``target_arn`` if given)."""
    with _deliveries_lock:
        return [d for d in _deliveries if target_arn is None or d.target_arn == target_arn]


def clear_deliveries() -> None:
    with _deliveries_lock:
        _deliveries.clear()


# ---------------------------------------------------------------------------------------------------------------------
# Delivery


def _send_to_targets(self: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
    """Replaces ``Rule.send_to_targets``: what a put event (or a replay) reaches."""
    if self.state != "ENABLED" or not self.event_pattern.get_pattern():
        return  # disabled, or a schedule-only rule
    if self.event_pattern.matches_event(event):
        _deliver(self, event, transform_input)


def _deliver(rule: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
    moto_targets = []
    for target in rule.targets:
        service = parse_arn(target["Arn"]).service
        if service in ("lambda", "states"):
            _start_async(rule, target, event)
        elif service == "sqs":
            _send_to_queue(rule, target, event)
        elif service in _MOTO_TARGET_SERVICES:
            moto_targets.append(target)
            _record(rule, target, _public_event(event)).finished.set()
        else:
            delivery = _record(rule, target, _public_event(event))
            delivery.error = f"targets of service {service} are not emulated"
            delivery.finished.set()
            LOG.warning("rule %s: %s", rule.arn, delivery.error)
    if moto_targets:
        moto_rule = copy.copy(rule)
        moto_rule.targets = moto_targets
        try:
            _original_send_to_targets(moto_rule, event, transform_input)
        except Exception:
            LOG.exception("rule %s: delivery to %s failed", rule.arn, [t["Arn"] for t in moto_targets])


def _send_to_queue(rule: Rule, target: dict[str, Any], event: dict[str, Any]) -> None:
    """The whole event (moto's own SQS delivery drops "account"), or the target's Input/InputPath/InputTransformer."""
    from moto.sqs.models import sqs_backends

    delivery = _record(rule, target, None)
    try:
        delivery.payload = _target_payload(target, _public_event(event))
        arn = parse_arn(target["Arn"])
        sqs_backends[arn.account][arn.region].send_message(
            queue_name=arn.resource_id,
            message_body=json.dumps(delivery.payload),
            group_id=target.get("SqsParameters", {}).get("MessageGroupId"),
        )
    except Exception as error:
        delivery.error = _describe_error(error)
        LOG.exception("rule %s: delivery to %s failed", rule.arn, target["Arn"])
    finally:
        delivery.finished.set()


def _record(rule: Rule, target: dict[str, Any], payload: Any) -> Delivery:
    delivery = Delivery(rule_arn=rule.arn, target_id=target["Id"], target_arn=target["Arn"], payload=payload)
    with _deliveries_lock:
        _deliveries.append(delivery)
    return delivery


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as targets see it: ISO time, without moto's internal ingestion time."""
    public = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(public.get("time"), (int, float)):
        public["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(public["time"]))
    return public


def _target_payload(target: dict[str, Any], event: dict[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        matches = parse_jsonpath(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer["InputTemplate"],
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event | {"ingestion-time": unix_time()},
        )
    return event


def _start_async(rule: Rule, target: dict[str, Any], event: dict[str, Any]) -> None:
    public = _public_event(event)
    try:
        payload = _target_payload(target, public)
    except Exception as error:
        delivery = _record(rule, target, None)
        delivery.error = f"input transformation failed: {_describe_error(error)}"
        delivery.finished.set()
        LOG.error("rule %s target %s: %s", rule.arn, target["Id"], delivery.error)
        return
    delivery = _record(rule, target, payload)
    thread = threading.Thread(target=_invoke, args=(delivery,), name=f"events-{target['Id']}", daemon=True)
    thread.start()


def _invoke(delivery: Delivery) -> None:
    arn = parse_arn(delivery.target_arn)
    body = json.dumps(delivery.payload)
    try:
        if arn.service == "lambda":
            from moto.awslambda.utils import get_backend as lambda_backend

            lambda_backend(arn.account, arn.region).invoke(
                function_name=delivery.target_arn,
                qualifier=None,
                body=body,
                headers={"x-amz-invocation-type": "Event"},
                response_headers={},
            )
        else:
            from moto.stepfunctions.responses import get_backend as sfn_backend

            sfn_backend(arn.account, arn.region).start_execution(
                state_machine_arn=delivery.target_arn, name=str(uuid.uuid4()), execution_input=body
            )
    except Exception as error:
        delivery.error = _describe_error(error)
        LOG.exception("rule %s: delivery to %s failed", delivery.rule_arn, delivery.target_arn)
    finally:
        delivery.finished.set()


def _describe_error(error: Exception) -> str:
    """moto's HTTP exceptions keep the useful text in ``message`` or ``description``."""
    detail = getattr(error, "message", None) or getattr(error, "description", None) or str(error)
    return f"{type(error).__name__}: {detail}"


# ---------------------------------------------------------------------------------------------------------------------
# Schedules


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
        super().__init__(name="localcloud-events-scheduler", daemon=True)
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
                _deliver(rule, _scheduled_event(rule))
        for stale in set(self._next_fire) - seen:  # deleted or disabled: a re-enabled rule starts a new period
            del self._next_fire[stale]
