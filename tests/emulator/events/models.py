"""EventBridge in the emulator: rules that deliver to Lambda, Step Functions and SQS, and events AWS services emit.

moto's ``Rule.send_to_targets`` raises NotImplementedError for Lambda and Step Functions targets and ignores the
rule's state. Its replacement (``send_to_targets``, installed by ``emulator.patches``): only ENABLED rules with an
event pattern receive put events; matching events go to every target: Lambda targets are invoked asynchronously
(invocation type Event) through the Lambda backend and Step Functions targets start an execution, both in a daemon
thread; SQS targets get the message at once; all three with the target's Input, InputPath or InputTransformer
applied; moto keeps delivering to the other targets it supports (CloudWatch Logs, event buses, archives, API
destinations). Schedules fire from ``emulator.events.scheduler``.

Every delivery is recorded (``deliveries()``); a failing target is logged and recorded, never raised.
"""

from __future__ import annotations

import copy
import json
import logging
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

LOG = logging.getLogger("emulator.events")

_MOTO_TARGET_SERVICES = ("logs", "events")  # CloudWatch Logs, event buses, archives, API destinations

_moto_send_to_targets: Any = None  # moto's own Rule.send_to_targets, for the targets it delivers to
_deliveries: list[Delivery] = []
_deliveries_lock = threading.Lock()


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
    from emulator import faults

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


def send_to_targets(original: Any) -> Any:
    """The replacement of ``Rule.send_to_targets`` (what a put event, or a replay, reaches); moto's own ``original``
    still serves the targets it supports."""
    global _moto_send_to_targets
    _moto_send_to_targets = original

    def send(self: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
        if self.state != "ENABLED" or not self.event_pattern.get_pattern():
            return  # disabled, or a schedule-only rule
        if self.event_pattern.matches_event(event):
            deliver(self, event, transform_input)

    return send


def deliver(rule: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
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
            _moto_send_to_targets(moto_rule, event, transform_input)
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
