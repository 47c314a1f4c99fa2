"""GetMetricStatistics and GetMetricData read one metric: its namespace, name and exact dimension set.

In CloudWatch a metric is identified by namespace, name and all its dimensions: a query for JobsFinished with
dimensions Stack and Action does not see the data published with Stack, Action and Result, and a query without
dimensions sees only the data published without any. moto matches the query's dimensions as a subset (and its
GetMetricData forgets the namespace once dimensions are given), so a metric emitted with one dimension too many (a
job id, say) would still pass a test that queries the intended set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from moto.cloudwatch.exceptions import InvalidParameterValue
from moto.cloudwatch.models import MetricDatumBase, Statistics, daterange


def _identity(dimensions: list[dict[str, str]]) -> frozenset[tuple[str, str]]:
    return frozenset((d["Name"], d.get("Value", "")) for d in dimensions)


def _same_metric(datum: MetricDatumBase, namespace: str, name: str, dimensions: frozenset[tuple[str, str]]) -> bool:
    return (
        datum.namespace == namespace
        and datum.name == name
        and frozenset((d.name, d.value) for d in datum.dimensions) == dimensions
    )


def get_metric_statistics(
    self: Any,
    namespace: str,
    metric_name: str,
    start_time: dt.datetime,
    end_time: dt.datetime,
    period: int,
    stats: list[str],
    dimensions: list[dict[str, str]],
    unit: str | None = None,
) -> list[Statistics]:
    """moto's GetMetricStatistics (periods from the first datum, its Statistics), over the exact metric only."""
    start_time, end_time = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
    if start_time >= end_time:
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
    wanted = _identity(dimensions or [])
    data = sorted(
        (
            datum
            for datum in self.get_all_metrics()
            if _same_metric(datum, namespace, metric_name, wanted)
            and start_time <= datum.timestamp < end_time
            and (not unit or datum.unit == unit)
        ),
        key=lambda datum: datum.timestamp,
    )
    if not data:
        return []
    delta = dt.timedelta(seconds=period)
    found: list[Statistics] = []
    for begins in daterange(data[0].timestamp, data[-1].timestamp + delta, delta):
        statistics = Statistics(stats, begins)
        statistics.metric_data = [datum for datum in data if begins <= datum.timestamp < begins + delta]
        if statistics.metric_data:
            statistics.unit = statistics.metric_data[-1].unit
            found.append(statistics)
    return found


def wrap_get_metric_data(original: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
    """GetMetricData's MetricStat queries over their exact metric; expressions stay moto's."""

    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: dt.datetime,
        end_time: dt.datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        results = original(self, queries, start_time, end_time, scan_by)
        exact = {
            query["Id"]: _metric_stat(self, query["MetricStat"], start_time, end_time, scan_by)
            for query in queries
            if "MetricStat" in query
        }
        for result in results:
            if result["id"] in exact:
                result["values"], result["timestamps"] = exact[result["id"]]
        return results

    return get_metric_data


def _metric_stat(
    backend: Any, stat: dict[str, Any], start_time: dt.datetime, end_time: dt.datetime, scan_by: str
) -> tuple[list[Any], list[dt.datetime]]:
    """One MetricStat's values and period start times, moto's periods (from StartTime) over the exact metric."""
    metric = stat["Metric"]
    wanted = _identity(metric.get("Dimensions", []))
    data = [
        datum
        for datum in backend.get_all_metrics()
        if _same_metric(datum, metric["Namespace"], metric["MetricName"], wanted)
        and (not stat.get("Unit") or datum.unit == stat["Unit"])
    ]
    delta = dt.timedelta(seconds=int(stat["Period"]))
    begins, end_time = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
    values: list[Any] = []
    timestamps: list[dt.datetime] = []
    while begins <= end_time:
        statistics = Statistics([stat["Stat"]], begins)
        statistics.metric_data = [d for d in data if begins <= d.timestamp < min(begins + delta, end_time)]
        if statistics.metric_data:
            values.append(statistics.get_statistics_for_type(stat["Stat"]))
            timestamps.append(begins)
        begins += delta
    if scan_by == "TimestampDescending":
        values.reverse()
        timestamps.reverse()
    return values, timestamps
