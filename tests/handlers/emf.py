"""Reading the Embedded Metric Format lines a handler printed, as CloudWatch reads them: each directive of a line
gives its metrics under its dimension set, their values at the line's root."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Datum:
    """One metric value as CloudWatch would store it from an EMF line."""

    namespace: str
    name: str
    unit: str
    dimensions: dict[str, str]
    values: tuple[float, ...]

    @property
    def value(self) -> float:
        [value] = self.values
        return value


def documents(output: str) -> list[dict[str, Any]]:
    """The EMF documents among output lines: the JSON lines with `_aws.CloudWatchMetrics`."""
    found = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if isinstance(document, dict) and "CloudWatchMetrics" in (document.get("_aws") or {}):
            found.append(document)
    return found


def data(output: str) -> list[Datum]:
    """Every metric datum the output's EMF lines define (one per metric and dimension set)."""
    found = []
    for document in documents(output):
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    raw = document[metric["Name"]]
                    found.append(
                        Datum(
                            namespace=directive["Namespace"],
                            name=metric["Name"],
                            unit=metric["Unit"],
                            dimensions={key: str(document[key]) for key in dimension_set},
                            values=tuple(float(v) for v in (raw if isinstance(raw, list) else [raw])),
                        )
                    )
    return found


def by_name(output: str) -> dict[str, Datum]:
    """The output's data by metric name (each name once: a test of one emission point)."""
    found = data(output)
    named = {datum.name: datum for datum in found}
    assert len(named) == len(found), f"a metric appears more than once: {[d.name for d in found]}"
    return named
