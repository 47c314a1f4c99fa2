"""Metrics extracted from log events in the CloudWatch embedded metric format (EMF), as CloudWatch Logs does.

A Lambda function that prints an EMF document to stdout gets metrics without calling PutMetricData: CloudWatch Logs
reads each of its log events and, when the event is an EMF document (a JSON object with `_aws.CloudWatchMetrics`),
publishes one datum per metric per dimension set, with the document's `_aws.Timestamp`. Lambda may put its own
metadata (time stamp, request id) before the document; the document after it still counts.

A document that breaks the specification publishes nothing, and CloudWatch Logs counts it in the AWS/Logs namespace
(EMFParsingErrors: not JSON; EMFValidationErrors: JSON but not valid EMF), per LogGroupName. The rules checked are the
specification's MUSTs: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import botocore.session

MAX_DIMENSION_KEYS = 30  # per dimension set
MAX_METRICS = 100  # MetricDefinitions per directive
MAX_VALUES = 100  # values of one metric target
NAME_LENGTH = range(1, 256)  # namespace, metric name and dimension key lengths
STORAGE_RESOLUTIONS = (1, 60)
# CloudWatch's StandardUnit values (Seconds, Count, ..., None), from the API's own model.
UNITS = frozenset(botocore.session.get_session().get_service_model("cloudwatch").shape_for("StandardUnit").enum)
LOGS_NAMESPACE = "AWS/Logs"
PARSING_ERRORS, VALIDATION_ERRORS = "EMFParsingErrors", "EMFValidationErrors"


class EmfError(ValueError):
    """A log event that claims to be EMF but is not; `metric` is the AWS/Logs metric that counts it."""

    metric = VALIDATION_ERRORS


class EmfParsingError(EmfError):
    metric = PARSING_ERRORS


@dataclass(frozen=True)
class Datum:
    """One extracted metric datum: what PutMetricData would have sent for it."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str
    values: tuple[float, ...]
    timestamp: dt.datetime  # naive UTC, as moto stores PutMetricData's
    storage_resolution: int = 60

    def metric_datum(self) -> dict[str, Any]:
        """The datum in PutMetricData's MetricData member shape."""
        return {
            "MetricName": self.name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
            "Unit": self.unit,
            "Values": list(self.values),
            "Timestamp": self.timestamp,
            "StorageResolution": self.storage_resolution,
        }


def document_text(message: str) -> str | None:
    """The EMF candidate in a log event: the message itself, or what follows Lambda's tab-separated metadata; None
    for an event that does not claim to be EMF (no `_aws` member anywhere)."""
    if '"_aws"' not in message:
        return None
    text = message.strip()
    if text.startswith("{"):
        return text
    _, tab, rest = text.partition("\t{")
    return "{" + rest if tab else None


def extract(message: str) -> list[Datum]:
    """The metric data of one log event ([] when it is not EMF); EmfError when it claims to be EMF and is not."""
    text = document_text(message)
    if text is None:
        return []
    try:
        root = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise EmfParsingError(f"not a JSON document: {exc}") from None
    if not isinstance(root, dict) or "_aws" not in root:
        return []
    metadata = _object(root["_aws"], "_aws")
    timestamp = _timestamp(metadata.get("Timestamp"))
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise EmfError("_aws.CloudWatchMetrics must be an array")
    return [datum for directive in directives for datum in _directive(root, _object(directive, "directive"), timestamp)]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EmfError(f"{what} must be an object")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) not in NAME_LENGTH:
        raise EmfError(f"{what} must be a string of 1 to 255 characters, got {value!r}")
    return value


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise EmfError(f"_aws.Timestamp must be milliseconds since the epoch, got {value!r}")
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC).replace(tzinfo=None)


def _directive(root: dict[str, Any], directive: dict[str, Any], timestamp: dt.datetime) -> list[Datum]:
    namespace = _name(directive.get("Namespace"), "Namespace")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list) or not dimension_sets:
        raise EmfError("Dimensions must be a non-empty array of dimension sets")
    dimensions = [_dimension_set(root, keys) for keys in dimension_sets]
    definitions = directive.get("Metrics")
    if not isinstance(definitions, list) or len(definitions) > MAX_METRICS:
        raise EmfError(f"Metrics must be an array of at most {MAX_METRICS} metric definitions")
    data = []
    for definition in definitions:
        name, unit, resolution, values = _metric(root, _object(definition, "metric definition"))
        data += [Datum(namespace, name, dims, unit, values, timestamp, resolution) for dims in dimensions if values]
    return data


def _dimension_set(root: dict[str, Any], keys: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(keys, list) or len(keys) > MAX_DIMENSION_KEYS:
        raise EmfError(f"a dimension set must be an array of at most {MAX_DIMENSION_KEYS} keys")
    pairs = []
    for key in keys:
        target = root.get(_name(key, "a dimension key"))
        if not isinstance(target, str) or not target:
            raise EmfError(f"the dimension {key!r} must be a non-empty string member of the root, got {target!r}")
        pairs.append((key, target))
    return tuple(pairs)


def _metric(root: dict[str, Any], definition: dict[str, Any]) -> tuple[str, str, int, tuple[float, ...]]:
    name = _name(definition.get("Name"), "a metric Name")
    unit = definition.get("Unit", "None")
    if unit not in UNITS:
        raise EmfError(f"the metric {name!r} has an invalid Unit {unit!r}")
    resolution = definition.get("StorageResolution", 60)
    if resolution not in STORAGE_RESOLUTIONS or isinstance(resolution, bool):
        raise EmfError(f"the metric {name!r} has an invalid StorageResolution {resolution!r}")
    target = root.get(name)
    values = target if isinstance(target, list) else [target]
    if len(values) > MAX_VALUES or not all(_is_number(value) for value in values):
        raise EmfError(f"the metric {name!r} must be a number or an array of at most {MAX_VALUES}, got {target!r}")
    return name, unit, resolution, tuple(float(value) for value in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def publish(account_id: str, region: str, log_group: str, messages: Iterable[str]) -> None:
    """What CloudWatch Logs does with a log group's new events: their EMF metrics go to CloudWatch, a broken EMF
    document is counted in AWS/Logs."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    for message in messages:
        try:
            data = extract(message)
        except EmfError as exc:
            _count_error(backend, log_group, exc.metric)
            continue
        for datum in data:
            backend.put_metric_data(datum.namespace, [datum.metric_datum()])


def _count_error(backend: Any, log_group: str, metric: str) -> None:
    datum = {"MetricName": metric, "Dimensions": [{"Name": "LogGroupName", "Value": log_group}], "Unit": "Count"}
    backend.put_metric_data(LOGS_NAMESPACE, [datum | {"Value": 1.0}])
