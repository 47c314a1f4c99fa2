"""The module's metrics, as CloudWatch Embedded Metric Format lines on stdout (DESIGN.md, "Metrics").

Lambda sends a function's output to CloudWatch Logs, and CloudWatch turns every EMF line there into metric data: no
PutMetricData call, no IAM permission, no latency added to a step. The names, units and dimensions come from one
catalogue, modules/observability/metrics.json, which the dashboard and the alarms read too (the code zip carries it
as ec2_action/metrics.json): a name that is not in it, or dimensions other than its own, raise MetricContractError,
so that a renamed metric fails the tests on whichever side renamed it.

Every emission point writes one line: its metrics grouped by their dimension sets (Stack + Action, plus the extra
ones a metric names, e.g. Result), one EMF directive per group, each serialised by aws-lambda-powertools.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from .config import load

# In the code zip the catalogue sits beside this file (lambda_src/build.py copies it); in the repository, in the
# observability module.
CATALOGUE_PATHS = (
    Path(__file__).with_name("metrics.json"),
    Path(__file__).resolve().parents[2] / "modules" / "observability" / "metrics.json",
)


class MetricContractError(ValueError):
    """A metric the catalogue does not define, or emitted with dimensions other than the catalogue's for it."""


@dataclass(frozen=True)
class MetricSpec:
    """One catalogue entry: the metric's unit and the names of its dimensions, in order."""

    name: str
    unit: str
    dimensions: tuple[str, ...]


@functools.cache
def catalogue() -> dict[str, MetricSpec]:
    """The catalogue's metrics by name, each with its full dimension list (its own `dimensions`, else the common
    ones, then its `extra_dimensions`)."""
    path = next((candidate for candidate in CATALOGUE_PATHS if candidate.is_file()), CATALOGUE_PATHS[0])
    raw = json.loads(path.read_text())
    common = tuple(raw["dimensions"])
    return {
        name: MetricSpec(
            name=name,
            unit=str(entry["unit"]),
            dimensions=tuple(entry.get("dimensions") or common) + tuple(entry.get("extra_dimensions") or ()),
        )
        for name, entry in raw["metrics"].items()
    }


def spec(name: str) -> MetricSpec:
    """The catalogue's entry for a metric; MetricContractError for a name it does not define."""
    found = catalogue().get(name)
    if found is None:
        raise MetricContractError(f"metric {name!r} is not in the catalogue (modules/observability/metrics.json)")
    return found


def emit(
    values: Mapping[str, float], properties: Mapping[str, str] | None = None, **dimensions: str
) -> dict[str, Any] | None:
    """Write one EMF line with these metrics (name -> value) in the configured namespace; `dimensions` gives every
    dimension value they need but Stack (the configuration's), e.g. Action, Result. `properties` (e.g. the job id) go
    into the document as EMF properties: searchable in the logs (Logs Insights), never a metric or a dimension, so
    they add no cardinality. Non-finite values are left out (CloudWatch rejects them). Returns the line's document
    (None when nothing was written)."""
    config = load()
    given = {"Stack": config.stack, **dimensions}
    groups: dict[tuple[str, ...], dict[str, tuple[MetricSpec, float]]] = {}
    for name, value in values.items():
        metric = spec(name)
        missing = [dimension for dimension in metric.dimensions if not given.get(dimension)]
        if missing:
            raise MetricContractError(f"metric {name} needs the dimensions {missing}")
        if math.isfinite(value):
            groups.setdefault(metric.dimensions, {})[name] = (metric, value)
    needed = {dimension for names in groups for dimension in names}
    unused = sorted(set(given) - needed - {"Stack"})
    if values and unused:
        raise MetricContractError(f"dimensions {unused} belong to none of the metrics {sorted(values)}")
    if not groups:
        return None
    document = _merged([_serialised(config.metrics_namespace, names, given, group) for names, group in groups.items()])
    clashing = sorted(set(properties or {}) & set(document))
    if clashing:
        raise MetricContractError(f"properties {clashing} would overwrite a metric or a dimension")
    document.update(properties or {})
    if not is_metrics_disabled():  # POWERTOOLS_METRICS_DISABLED, as powertools' own flush honours it
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    return document


def _serialised(
    namespace: str,
    dimension_names: tuple[str, ...],
    given: Mapping[str, str],
    group: Mapping[str, tuple[MetricSpec, float]],
) -> dict[str, Any]:
    """One EMF document for metrics that share a dimension set. service="" keeps powertools from adding a `service`
    dimension (it would from POWERTOOLS_SERVICE_NAME, which the logger sets)."""
    provider = AmazonCloudWatchEMFProvider(namespace=namespace, service="")
    for dimension in dimension_names:
        provider.add_dimension(name=dimension, value=given[dimension])
    for name, (metric, value) in group.items():
        provider.add_metric(name=name, unit=metric.unit, value=value)
    return dict(provider.serialize_metric_set())


def _merged(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The documents as one: their directives side by side under one timestamp, their values at the root (EMF allows
    several directives per line; each names its own dimension set)."""
    merged = {key: value for key, value in documents[0].items() if key != "_aws"}
    directives = list(documents[0]["_aws"]["CloudWatchMetrics"])
    for document in documents[1:]:
        directives += document["_aws"]["CloudWatchMetrics"]
        merged.update({key: value for key, value in document.items() if key != "_aws"})
    # powertools writes every value as a list (it may aggregate several); one value is written as a number.
    merged = {key: value[0] if isinstance(value, list) and len(value) == 1 else value for key, value in merged.items()}
    return {"_aws": {"Timestamp": documents[0]["_aws"]["Timestamp"], "CloudWatchMetrics": directives}, **merged}
