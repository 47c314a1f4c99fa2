"""What happened to one job, in order, read back from the local cloud's APIs (for the demo and the benchmark)."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulator import events
from emulator.ssm import agent
from harness.deployment import Deployment, PipelineRun

STARTED_EVENT = "CodePipeline Action Execution State Change"


@dataclass(frozen=True)
class Moment:
    at: float  # epoch seconds
    what: str


@dataclass(frozen=True)
class JobFigures:
    """The benchmark's per-job figures (seconds are wall-clock seconds in the local cloud)."""

    event_to_command_start: float | None
    event_to_run_instances: float | None  # STARTED event -> the first instance launched
    registration_to_readiness_seen: float | None  # agent registered -> the build command sent
    command_end_to_reported: float | None
    state_transitions: int
    registration_checks: int  # the Systems Manager checks WaitForSsmOnline made (its output's `checks`)
    command_seconds: float | None
    boot: str | None  # how the job's instance became available: "launch", "start" (stopped pool) or "ready" (warm)
    queue_wait: float  # seconds the job spent in WaitForCapacity (the cap reached)


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def started_event_time(run: PipelineRun) -> float | None:
    """When EventBridge delivered the STARTED event of the run's custom action (first delivery)."""
    times = []
    for delivery in events.deliveries():
        event = delivery.payload if isinstance(delivery.payload, dict) else json.loads(delivery.payload)
        detail = event.get("detail", {})
        if (
            event.get("detail-type") == STARTED_EVENT
            and detail.get("state") == "STARTED"
            and detail.get("pipeline") == run.pipeline_name
            and detail.get("execution-id") == run.execution_id
            and detail.get("type", {}).get("owner") == "Custom"
        ):
            times.append(delivery.time)
    return min(times) if times else None


def command_invocation(deployment: Deployment, run: PipelineRun) -> dict[str, Any] | None:
    """The build's SSM command invocation (with output), if one was sent: the run's first job's (its id is the
    command's comment), on one of the run's instances (a pooled instance runs many jobs' commands); of a build
    restarted after a spot interruption, the one on its last instance (the run that gave the result)."""
    ssm = deployment.client("ssm")
    job_ids = {job.id for job in run.jobs}
    for instance in reversed(run.instances):  # launch order: the last instance first
        invocations = ssm.list_command_invocations(InstanceId=instance["InstanceId"], Details=True)
        for invocation in invocations["CommandInvocations"]:
            if invocation.get("DocumentName") == deployment.outputs["document_name"] and (
                invocation.get("Comment") in job_ids
            ):
                return invocation
    return None


def _command_window(invocation: dict[str, Any] | None) -> tuple[float | None, float | None]:
    if not invocation:
        return None, None
    plugins = [p for p in invocation.get("CommandPlugins", []) if p.get("ResponseStartDateTime")]
    if not plugins:
        return None, None
    start = min(_epoch(p["ResponseStartDateTime"]) for p in plugins)
    ends = [_epoch(p["ResponseFinishDateTime"]) for p in plugins if p.get("ResponseFinishDateTime")]
    return start, (max(ends) if ends else None)


def _history(deployment: Deployment, execution_arn: str) -> list[dict[str, Any]]:
    sfn = deployment.client("stepfunctions")
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def registration_checks(deployment: Deployment, execution_arn: str) -> int:
    """The Systems Manager checks the execution's WaitForSsmOnline invocations reported (`$.ssm.checks`)."""
    checks = 0
    for event in _history(deployment, execution_arn):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "WaitForSsmOnline" and details.get("output"):
            checks += int((json.loads(details["output"]).get("ssm") or {}).get("checks", 0))
    return checks


def acquired(deployment: Deployment, execution_arn: str) -> dict[str, Any]:
    """The instance the execution's last AcquireInstance step handed the job (`$.instance`), {} if none."""
    found: dict[str, Any] = {}
    for event in _history(deployment, execution_arn):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "AcquireInstance" and details.get("output"):
            found = json.loads(details["output"]).get("instance") or found
    return found


def queue_wait(deployment: Deployment, execution_arn: str) -> float:
    """Seconds the execution spent in its WaitForCapacity steps (entered -> exited)."""
    waited, entered = 0.0, None
    for event in _history(deployment, execution_arn):
        name = (event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}).get("name")
        if name != "WaitForCapacity":
            continue
        if event["type"].endswith("StateEntered"):
            entered = _epoch(event["timestamp"])
        elif entered is not None:
            waited += _epoch(event["timestamp"]) - entered
            entered = None
    return waited


def state_history(deployment: Deployment, execution_arn: str) -> list[Moment]:
    """Each state the execution entered, with its time."""
    history = _history(deployment, execution_arn)
    return [
        Moment(_epoch(event["timestamp"]), f"state {event['stateEnteredEventDetails']['name']}")
        for event in history
        if event["type"].endswith("StateEntered")
    ]


def moments(deployment: Deployment, run: PipelineRun) -> list[Moment]:
    """The job's timeline: pipeline start, event, states, command, answers to CodePipeline."""
    found = [Moment(run.started, "pipeline execution started")]
    event_time = started_event_time(run)
    if event_time is not None:
        found.append(Moment(event_time, "STARTED event delivered to the poll Lambda"))
    for execution in run.state_machine_executions:
        found.append(Moment(_epoch(execution["startDate"]), f"execution {execution['name']} started"))
        found.extend(state_history(deployment, execution["executionArn"]))
    for instance in run.instances:
        found.append(Moment(_epoch(instance["LaunchTime"]), f"instance {instance['InstanceId']} launched"))
        started = agent.start_times(instance["InstanceId"])
        if started is not None and started[0] >= run.started:
            found.append(Moment(started[0], f"instance {instance['InstanceId']} started (stopped pool)"))
            found.append(Moment(started[1], f"instance {instance['InstanceId']} Online again in Systems Manager"))
    start, end = _command_window(command_invocation(deployment, run))
    if start is not None:
        found.append(Moment(start, "build command started on the instance"))
    if end is not None:
        found.append(Moment(end, "build command ended"))
    for result in run.results:
        if result.continuation_token:
            found.append(Moment(result.time, f"job {result.job_id[:8]} continued (Details link -> execution)"))
        else:
            found.append(Moment(result.time, f"job {result.job_id[:8]} answered: {result.kind}"))
    return sorted(found, key=lambda moment: moment.at)


def _launches(run: PipelineRun) -> list[tuple[float, float | None]]:
    """(launched, registered) epoch seconds of the run's instances, in launch order."""
    found = [agent.launch_times(instance["InstanceId"]) for instance in run.instances]
    return sorted(times for times in found if times is not None)


def _difference(later: float | None, earlier: float | None) -> float | None:
    return later - earlier if later is not None and earlier is not None else None


def figures(deployment: Deployment, run: PipelineRun, transitions: int) -> JobFigures:
    checks = sum(registration_checks(deployment, e["executionArn"]) for e in run.state_machine_executions)
    event_time = started_event_time(run)
    invocation = command_invocation(deployment, run)
    start, end = _command_window(invocation)
    instance = next((acquired(deployment, e["executionArn"]) for e in reversed(run.state_machine_executions)), {})
    boot = instance.get("boot", "launch" if instance else None)
    sent, registered = None, None
    if invocation:
        sent = _epoch(invocation["RequestedDateTime"])
        if boot == "start":
            registered = (agent.start_times(invocation["InstanceId"]) or (None, None))[1]
        elif boot != "ready":  # a ready (warm) instance registered long before the job
            registered = (agent.launch_times(invocation["InstanceId"]) or (None, None))[1]
    launches = [times for times in _launches(run) if boot == "launch" and times[0] >= run.started - 1]
    final = run.final_result
    return JobFigures(
        event_to_command_start=_difference(start, event_time),
        event_to_run_instances=_difference(launches[0][0] if launches else None, event_time),
        registration_to_readiness_seen=_difference(sent, registered),
        command_end_to_reported=(final.time - end) if final is not None and end is not None else None,
        state_transitions=transitions,
        registration_checks=checks,
        command_seconds=(end - start) if start is not None and end is not None else None,
        boot=boot,
        queue_wait=sum(queue_wait(deployment, e["executionArn"]) for e in run.state_machine_executions),
    )


# --- spot: restarts and what instances cost ---------------------------------------------------------------------------

INTERRUPTION_WARNING = "EC2 Spot Instance Interruption Warning"
STATE_CHANGE = "EC2 Instance State-change Notification"
ENDING_STATES = ("shutting-down", "terminated")
# moto's StateTransitionReason of a terminated instance: "User initiated (2026-12-03 18:40:00 UTC)".
REASON_TIME = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?: UTC| GMT)?\)")


@dataclass(frozen=True)
class Restart:
    """One interruption of a job's instance and the restart that followed, in epoch seconds."""

    instance_id: str  # the interrupted instance
    interrupted_at: float | None  # its interruption warning (or, the warning lost, its shutting down)
    next_command_start: float | None  # the build command's start on the job's next instance

    @property
    def extra_seconds(self) -> float | None:
        return _difference(self.next_command_start, self.interrupted_at)


def acquisitions(deployment: Deployment, execution_arn: str) -> list[dict[str, Any]]:
    """Every instance the execution's AcquireInstance steps handed the job (`$.instance`), in order: one per
    attempt, so each but the last was interrupted."""
    found = []
    for event in _history(deployment, execution_arn):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "AcquireInstance" and details.get("output"):
            instance = json.loads(details["output"]).get("instance")
            if instance:
                found.append(instance)
    return found


def _ec2_events(instance_id: str) -> list[tuple[float, str, dict[str, Any]]]:
    """(delivered at, detail type, detail) of EC2's events about the instance that EventBridge delivered."""
    found = []
    for delivery in events.deliveries():
        event = delivery.payload if isinstance(delivery.payload, dict) else json.loads(delivery.payload or "{}")
        detail = event.get("detail") or {}
        if event.get("source") == "aws.ec2" and detail.get("instance-id") == instance_id:
            found.append((delivery.time, str(event.get("detail-type")), detail))
    return found


def interrupted_at(instance_id: str) -> float | None:
    """When the instance's interruption was announced: its warning, else (a lost warning) its shutting down."""
    delivered = _ec2_events(instance_id)
    warnings = [at for at, kind, _ in delivered if kind == INTERRUPTION_WARNING]
    ending = [at for at, kind, detail in delivered if kind == STATE_CHANGE and detail.get("state") in ENDING_STATES]
    return min(warnings or ending) if warnings or ending else None


def command_window_on(deployment: Deployment, run: PipelineRun, instance_id: str) -> tuple[float | None, float | None]:
    """When the run's build command started and ended on the instance (its plugins' first start and last end),
    None for what never happened."""
    ssm = deployment.client("ssm")
    job_ids = {job.id for job in run.jobs}
    invocations = ssm.list_command_invocations(InstanceId=instance_id, Details=True)["CommandInvocations"]
    for invocation in invocations:
        if (
            invocation.get("DocumentName") == deployment.outputs["document_name"]
            and invocation.get("Comment") in job_ids
        ):
            return _command_window(invocation)
    return None, None


def command_start_on(deployment: Deployment, run: PipelineRun, instance_id: str) -> float | None:
    """When the run's build command started on the instance (its first plugin's start), None if it never did."""
    return command_window_on(deployment, run, instance_id)[0]


def restarts(deployment: Deployment, run: PipelineRun) -> list[Restart]:
    """The run's restarts: each instance handed to the job but the last was interrupted, and the build started
    again on the next."""
    found = []
    for execution in run.state_machine_executions:
        handed = [instance["instance_id"] for instance in acquisitions(deployment, execution["executionArn"])]
        for interrupted, following in itertools.pairwise(handed):
            found.append(
                Restart(interrupted, interrupted_at(interrupted), command_start_on(deployment, run, following))
            )
    return found


def ended_at(instance: dict[str, Any]) -> float | None:
    """When EC2 says the instance was terminated (its StateTransitionReason's time), None while it lives."""
    if instance["State"]["Name"] not in ENDING_STATES:
        return None
    said = REASON_TIME.search(instance.get("StateTransitionReason") or "")
    if said:
        return datetime.strptime(said.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    ending = [
        at
        for at, kind, d in _ec2_events(instance["InstanceId"])
        if kind == STATE_CHANGE and d.get("state") in ENDING_STATES
    ]
    return min(ending) if ending else None


def instance_seconds(instances: list[dict[str, Any]], now: float) -> dict[str, float]:
    """Seconds each purchase option ran (launch to termination per instance, `now` for one still alive), by EC2's
    InstanceLifecycle ("spot"; none: "on-demand"): what a cost estimate multiplies by each option's price."""
    seconds: dict[str, float] = {}
    for instance in instances:
        option = str(instance.get("InstanceLifecycle") or "on-demand")
        end = ended_at(instance) or now
        seconds[option] = seconds.get(option, 0.0) + max(0.0, end - _epoch(instance["LaunchTime"]))
    return seconds


# --- spans: where each job's time went, for the bench's timeline chart ---------------------------------------------

PHASES = ("queue", "acquire", "boot", "build", "report")
# The state whose time is each phase's (entered -> exited); build and report come from the command and the answer.
STATE_PHASES = {"WaitForCapacity": "queue", "AcquireInstance": "acquire", "WaitForSsmOnline": "boot"}


@dataclass(frozen=True)
class Span:
    """One stretch of a job's time in one phase, in epoch seconds."""

    phase: str  # one of PHASES
    start: float
    end: float


@dataclass(frozen=True)
class JobSpans:
    """One job's phases in the order they happened, for a timeline chart: the gaps between them are the module's
    own steps (a Lambda's start, a state transition, a callback)."""

    label: str
    started: float  # the STARTED event (the pipeline's start if the event was not seen)
    answered: float | None  # the job's final answer to CodePipeline
    spans: tuple[Span, ...]
    interruptions: tuple[float, ...] = ()  # spot interruptions of the job's instances (each followed by a restart)


def state_spans(deployment: Deployment, execution_arn: str) -> list[tuple[str, float, float]]:
    """(state, entered, left) of each state the execution went through, in order. A state is left at its Exited
    event, or (a caught failure that recorded none) when the next state is entered."""
    found: list[tuple[str, float, float]] = []
    current: tuple[str, float] | None = None
    for event in _history(deployment, execution_arn):
        kind, at = str(event["type"]), _epoch(event["timestamp"])
        if kind.endswith("StateEntered"):
            if current is not None:
                found.append((current[0], current[1], at))
            current = (event["stateEnteredEventDetails"]["name"], at)
        elif kind.endswith("StateExited") and current is not None:
            found.append((current[0], current[1], at))
            current = None
    return found


def job_spans(deployment: Deployment, run: PipelineRun, label: str) -> JobSpans:
    """The run's queue waits, acquisitions and boots (their states' times), its build command on each instance it
    was handed (an interrupted one ends at its state's end, or at the interruption) and the report (the last
    command's end -> the final answer), with the interruptions of its instances."""
    spans: list[Span] = []
    builds: list[tuple[str, float, float]] = []
    for execution in run.state_machine_executions:
        arn = execution["executionArn"]
        states = state_spans(deployment, arn)
        spans += [Span(STATE_PHASES[name], start, end) for name, start, end in states if name in STATE_PHASES]
        builds += [(name, start, end) for name, start, end in states if name == "RunBuildCommand"]
        for instance in acquisitions(deployment, arn):
            start, end = command_window_on(deployment, run, instance["instance_id"])
            if start is None:
                continue
            if end is None:  # never finished there: cut at its state's end, else at the interruption
                ends = [left for _, entered, left in builds if entered <= start <= left]
                end = ends[0] if ends else interrupted_at(instance["instance_id"])
            if end is not None:
                spans.append(Span("build", start, end))
    final = run.final_result
    done = [span.end for span in spans if span.phase == "build"] or [end for _, _, end in builds]
    if final is not None and done:
        spans.append(Span("report", max(done), final.time))
    interruptions = [r.interrupted_at for r in restarts(deployment, run) if r.interrupted_at is not None]
    return JobSpans(
        label=label,
        started=started_event_time(run) or run.started,
        answered=final.time if final is not None else None,
        spans=tuple(sorted(spans, key=lambda span: span.start)),
        interruptions=tuple(sorted(interruptions)),
    )
