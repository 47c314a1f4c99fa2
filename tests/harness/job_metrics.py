"""The CloudWatch metrics a job left in the local cloud, read as an operator reads them, and what they must say.

The functions print their metrics in the embedded metric format; the local cloud turns those lines into CloudWatch
metrics (emulator.logs.emf). A job's lines are found in its functions' log groups by the job id they carry as an EMF
property (never a dimension); each of their metrics must then be in CloudWatch (GetMetricStatistics, the stack's own
namespace and exact dimensions: Stack = the name prefix, Action = the action's key, read from the deployed
EC2_ACTION_CONFIG). Other jobs' metrics in the same minutes (a test before still finishing) do not confuse it. Used
by the e2e tests (a succeeded, a failed and a no-capacity job) and by `make demo` (which prints them).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from harness.deployment import Deployment

# report's per-job latency split (modules/observability/metrics.json): STARTED -> command start is the sum of the
# first four; BuildSeconds is the command's own run.
PHASES = ("QueueWaitSeconds", "AcquireSeconds", "BootSeconds", "OverheadSeconds")
TIME_TO_COMMAND, BUILD = "TimeToCommandSeconds", "BuildSeconds"
JOB_METRICS = ("JobsFinished", *PHASES, TIME_TO_COMMAND, BUILD)
CAPACITY_ERRORS = "CapacityErrors"
EMF_ERRORS = ("EMFParsingErrors", "EMFValidationErrors")
ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
ROUNDING_SECONDS = 1.0  # the phases are each rounded by the emitter; their sum may differ from the total by this
METRICS_DELAY_SECONDS = 30.0  # how long report's line may take to become a metric after the pipeline's answer


@dataclass(frozen=True)
class Stat:
    """A metric's statistics over a window."""

    samples: float
    total: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Scope:
    """Where a stack's metrics are: its namespace and the dimensions every one of them carries."""

    namespace: str
    stack: str
    action: str
    subnet_zones: dict[str, str]

    @property
    def dimensions(self) -> list[dict[str, str]]:
        return [{"Name": "Stack", "Value": self.stack}, {"Name": "Action", "Value": self.action}]


def scope(deployment: Deployment) -> Scope:
    """The deployment's namespace, stack and action key, from the EC2_ACTION_CONFIG its functions read."""
    function = deployment.outputs["poll_function_name"]
    environment = deployment.client("lambda").get_function_configuration(FunctionName=function)["Environment"]
    config = json.loads(environment["Variables"]["EC2_ACTION_CONFIG"])
    action = deployment.action
    [key] = {
        a["key"]
        for a in config["actions"]
        if all(a[k] == action[k] for k in ("category", "owner", "provider"))
        and action["version"] in map(str, a["versions"])
    }
    return Scope(config["metrics_namespace"], config["stack"], key, dict(config.get("subnet_zones") or {}))


class JobWindow:
    """The metrics of one stack in the window [since, until] (until: now, read when asked)."""

    def __init__(self, deployment: Deployment, since: float, until: float | None = None) -> None:
        self.deployment = deployment
        self.scope = scope(deployment)
        self.since = since
        self.until = until
        self.cloudwatch = deployment.client("cloudwatch")

    def _window(self) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime.fromtimestamp(self.since, dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
        end = dt.datetime.fromtimestamp(self.until or time.time(), dt.UTC) + dt.timedelta(seconds=2)
        return start, end

    def stat(self, name: str, extra: dict[str, str] | None = None, namespace: str | None = None) -> Stat | None:
        """The statistics of the metric `name` with the stack's dimensions plus `extra` (None: no datum)."""
        dimensions = [*self.scope.dimensions, *({"Name": k, "Value": v} for k, v in (extra or {}).items())]
        return self._stat(namespace or self.scope.namespace, name, dimensions)

    def _stat(self, namespace: str, name: str, dimensions: list[dict[str, str]]) -> Stat | None:
        start, end = self._window()
        period = 60 * max(1, int((end - start).total_seconds() // 60) + 1)
        points = self.cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=dimensions,
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=["SampleCount", "Sum", "Minimum", "Maximum"],
        )["Datapoints"]
        if not points:
            return None
        return Stat(
            samples=sum(p["SampleCount"] for p in points),
            total=sum(p["Sum"] for p in points),
            minimum=min(p["Minimum"] for p in points),
            maximum=max(p["Maximum"] for p in points),
        )

    def series(self, name: str) -> list[dict[str, str]]:
        """Every dimension set (name -> value) the stack published `name` with (ListMetrics: any window)."""
        pages = self.cloudwatch.get_paginator("list_metrics").paginate(
            Namespace=self.scope.namespace, MetricName=name, Dimensions=self.scope.dimensions
        )
        return [{d["Name"]: d["Value"] for d in m["Dimensions"]} for page in pages for m in page["Metrics"]]

    def emf_errors(self) -> dict[str, float]:
        """Broken EMF documents the stack's functions printed in the window, per AWS/Logs metric and log group."""
        prefix = f"/aws/lambda/{self.scope.stack}-"
        found = {}
        for name in EMF_ERRORS:
            for metric in self.cloudwatch.list_metrics(Namespace="AWS/Logs", MetricName=name)["Metrics"]:
                group = {d["Name"]: d["Value"] for d in metric["Dimensions"]}.get("LogGroupName", "")
                stat = self._stat("AWS/Logs", name, metric["Dimensions"]) if group.startswith(prefix) else None
                if stat is not None and stat.total:
                    found[f"{name} {group}"] = stat.total
        return found


def _as_list(dimensions: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in dimensions.items()]


def job_documents(window: JobWindow, job_id: str, function: str) -> list[dict[str, Any]]:
    """The EMF documents `function` (report, acquire) printed for this job in the window: found in its log group by
    the job id the functions put in the document as a property (never a dimension), as an operator finds a job's
    line with Logs Insights. Other jobs' lines, of a test before this one still finishing, are not this job's."""
    logs = window.deployment.client("logs")
    start, end = window._window()
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=f"/aws/lambda/{window.scope.stack}-{function}",
        startTime=int(start.timestamp() * 1000),
        endTime=int(end.timestamp() * 1000),
    )
    found = []
    try:
        for page in pages:
            for event in page["events"]:
                text = event["message"]
                try:
                    document = json.loads(text[text.index("{") :])
                except ValueError:
                    continue
                if isinstance(document, dict) and "_aws" in document and document.get("job_id") == job_id:
                    found.append(document)
    except logs.exceptions.ResourceNotFoundException:
        return []
    return found


def _metrics_of(document: dict[str, Any]) -> dict[str, tuple[float, dict[str, str]]]:
    """name -> (value, its dimensions) of every metric an EMF document holds."""
    found = {}
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for names in directive["Dimensions"]:
            dimensions = {name: str(document[name]) for name in names}
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                found[metric["Name"]] = (float(value[0] if isinstance(value, list) else value), dimensions)
    return found


def report_documents(window: JobWindow, job_id: str, timeout: float = METRICS_DELAY_SECONDS) -> list[dict[str, Any]]:
    """report's documents for the job, once its line is in the logs (or [] after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in job_documents(window, job_id, "report") if "JobsFinished" in d]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _in_cloudwatch(window: JobWindow, name: str, value: float, dimensions: dict[str, str]) -> str | None:
    """A problem when CloudWatch has no datum of `name` with exactly these dimensions around `value`."""
    stat = window._stat(window.scope.namespace, name, _as_list(dimensions))
    if stat is None:
        return f"{name} {dimensions} is in the logs but not in CloudWatch"
    if not stat.minimum - 1e-6 <= value <= stat.maximum + 1e-6:
        return f"{name} {value:g} is in the logs, CloudWatch has {stat.minimum:g}..{stat.maximum:g}"
    return None


def problems(window: JobWindow, result: str, wall_seconds: float, job_id: str) -> list[str]:
    """What is wrong with the metrics of job `job_id` (the first job's id, the execution's name), which ended with
    `result` after `wall_seconds`: its EMF documents read from the logs by its id, and each of their metrics found in
    CloudWatch with exactly its dimensions (the local cloud extracts them as CloudWatch Logs does).

    Every job: exactly one JobsFinished, under its Result, no broken EMF document. A job whose command ran
    (Succeeded, CommandFailed): each phase once, none negative or longer than the job, the phases adding up to
    TimeToCommandSeconds, no queue wait (the e2e deployment has no pool), a boot that took time. A job that never got
    an instance (NoCapacity): no boot, no command, and CapacityErrors per instance type and zone (a zone, not a
    subnet id) for the pools it tried."""
    found: list[str] = []
    reports = report_documents(window, job_id)
    if len(reports) != 1:
        return [f"{len(reports)} JobsFinished lines of report for job {job_id}, expected 1"]
    [report] = reports
    metrics = _metrics_of(report)
    if report.get("Result") != result:
        found.append(f"JobsFinished under Result {report.get('Result')!r}, expected {result!r}")
    command_ran = result in ("Succeeded", "CommandFailed", "TimedOut")
    missing = sorted(set(JOB_METRICS) - set(metrics)) if command_ran else []
    never_reached = [] if command_ran else sorted({"BootSeconds", TIME_TO_COMMAND, BUILD} & set(metrics))
    if missing:
        found.append(f"metrics missing for a job whose command ran: {missing}")
    if never_reached:
        found.append(f"metrics of phases the job never reached: {never_reached}")
    for name, (value, dimensions) in metrics.items():
        if name != "JobsFinished" and not 0 <= value <= wall_seconds:
            found.append(f"{name}: {value:g} s, outside 0..{wall_seconds:.1f} s (the job)")
        if problem := _in_cloudwatch(window, name, value, dimensions):
            found.append(problem)
    if command_ran and not missing:
        parts = sum(metrics[name][0] for name in PHASES)
        if abs(parts - metrics[TIME_TO_COMMAND][0]) > ROUNDING_SECONDS:
            found.append(f"the phases add up to {parts:g} s, TimeToCommandSeconds is {metrics[TIME_TO_COMMAND][0]:g}")
        if metrics["QueueWaitSeconds"][0] != 0:
            found.append(f"QueueWaitSeconds {metrics['QueueWaitSeconds'][0]:g} without a pool queue, expected 0")
        if metrics["BootSeconds"][0] <= 0:
            found.append("BootSeconds is 0: the instance came Online before it was launched")
    if result == "NoCapacity":
        found += _capacity_problems(window, job_id)
    broken = window.emf_errors()
    if broken:
        found.append(f"the functions printed broken EMF documents: {broken}")
    return found


def _capacity_problems(window: JobWindow, job_id: str) -> list[str]:
    refusals = [
        _metrics_of(document)[CAPACITY_ERRORS]
        for document in job_documents(window, job_id, "acquire")
        if CAPACITY_ERRORS in document
    ]
    if not refusals:
        return ["no CapacityErrors for a job that found no capacity"]
    found = []
    zones = set(window.scope.subnet_zones.values())
    for count, dimensions in refusals:
        if sorted(dimensions) != ["Action", "AvailabilityZone", "InstanceType", "Stack"]:
            found.append(f"CapacityErrors dimensions: {sorted(dimensions)}")
        zone, instance_type = dimensions.get("AvailabilityZone", ""), dimensions.get("InstanceType", "?")
        if not ZONE.match(zone) or (zones and zone not in zones):
            found.append(f"CapacityErrors zone {zone!r} ({instance_type}) is not one of the stack's zones {zones}")
        if count < 1:
            found.append(f"CapacityErrors {instance_type} in {zone}: {count:g}")
        if problem := _in_cloudwatch(window, CAPACITY_ERRORS, count, dimensions):
            found.append(problem)
    return found


def rows(window: JobWindow) -> list[tuple[str, str, Stat]]:
    """Every metric the stack published in the window: (name, its dimensions beyond Stack and Action, statistics)."""
    pages = window.cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=window.scope.namespace, Dimensions=window.scope.dimensions
    )
    found = []
    for name in sorted({m["MetricName"] for page in pages for m in page["Metrics"]}):
        for dimensions in window.series(name):
            stat = window._stat(window.scope.namespace, name, _as_list(dimensions))
            if stat is not None:
                extra = ", ".join(f"{k}={v}" for k, v in sorted(dimensions.items()) if k not in ("Stack", "Action"))
                found.append((name, extra, stat))
    return found


def describe(window: JobWindow) -> str:
    """The stack's namespace and dimensions, for a heading."""
    return f"namespace {window.scope.namespace}, Stack={window.scope.stack}, Action={window.scope.action}"
