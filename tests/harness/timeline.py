"""What happened to one job, in order, read back from the local cloud's APIs (for the demo and the benchmark)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
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
    command's comment), on one of the run's instances (a pooled instance runs many jobs' commands)."""
    ssm = deployment.client("ssm")
    job_ids = {job.id for job in run.jobs}
    for instance in run.instances:
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
