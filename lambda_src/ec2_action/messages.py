"""What people read in the CodePipeline console: why a build failed or what it did, and where the full log is.

A result is `{"succeeded", "message", "failure_type"}` (the jobs table's `result`). Messages are composed within
CodePipeline's limits, free of terminal control sequences; when build output does not fit, its beginning is cut at a
line start so that the last lines survive, each output stream keeping its heading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import text
from .payloads import BuildSpec, Result

if TYPE_CHECKING:
    from .config import ActionType

SUMMARY_LIMIT = 2048  # executionDetails.summary
MESSAGE_LIMIT = 5000  # failureDetails.message
TAIL_LINES = 40
CUT = "…\n"

CONFIGURATION_ERROR = "ConfigurationError"
JOB_FAILED = "JobFailed"


def fit(head: str, tail: str, limit: int) -> str:
    """head + tail within limit characters without terminal control sequences (text.clean), cutting the tail's
    beginning first (at a line start), then the head's end."""
    head, tail = text.clean(head), text.clean(tail)
    if len(head) + len(tail) <= limit:
        return head + tail
    if len(head) + len(CUT) < limit and tail:
        return head + CUT + text.tail(tail, limit - len(head) - len(CUT))
    return head[: limit - 1] + "…"


def last_lines(output: str, count: int = TAIL_LINES) -> str:
    return "\n".join(output.rstrip().splitlines()[-count:])


# The AWS console's host in each partition; any other partition uses the commercial one. modules/action_type (its
# console_host local) links the action's pages with the same map; tests/test_shared_constants.py keeps them equal.
CONSOLE_HOSTS = {"aws-cn": "console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}
DEFAULT_CONSOLE_HOST = "console.aws.amazon.com"


@dataclass(frozen=True)
class Console:
    """The AWS console of one region, in its partition (aws, aws-cn, aws-us-gov)."""

    region: str
    partition: str

    def url(self, service: str, fragment: str) -> str:
        host = CONSOLE_HOSTS.get(self.partition, DEFAULT_CONSOLE_HOST)
        return f"https://{self.region}.{host}/{service}/home?region={self.region}#{fragment}"


def log_console_url(console: Console, group: str, stream: str) -> str:
    def escape(value: str) -> str:
        return quote(quote(value, safe=""), safe="").replace("%", "$")

    return console.url("cloudwatch", f"logsV2:log-groups/log-group/{escape(group)}/log-events/{escape(stream)}")


def log_location(console: Console, log_group: str, stream_prefix: str) -> str:
    stream = f"{stream_prefix}/stdout"
    return (
        f"Full log: CloudWatch Logs group {log_group}, stream {stream} (errors in {stream_prefix}/stderr): "
        f"{log_console_url(console, log_group, stream)}"
    )


def _sections(outcome: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, last lines) of the command's output and errors, for each that has any; a stream whose lines are not
    its end (its log stream could not be read) says so in its heading."""
    sections = []
    for stream, title in (("stdout", "Last lines of output"), ("stderr", "Last lines of errors")):
        lines = last_lines(text.clean(outcome.get(f"{stream}_tail") or ""))
        if lines.strip():
            note = outcome.get(f"{stream}_note")
            sections.append((f"{title} ({note}):\n" if note else f"{title}:\n", lines))
    return sections


def _shares(needs: list[int], room: int) -> list[int]:
    """room divided among needs: evenly, except that a need below its even share gets just that, the rest going to
    the others."""
    given = [0] * len(needs)
    for done, index in enumerate(sorted(range(len(needs)), key=needs.__getitem__)):
        given[index] = min(needs[index], room // (len(needs) - done))
        room -= given[index]
    return given


def _output(outcome: dict[str, Any], room: int) -> str:
    """The output sections within room characters: each keeps its heading and the last lines its share holds."""
    sections = _sections(outcome)
    room -= max(len(sections) - 1, 0)  # the newlines between sections
    given = _shares([len(heading) + len(lines) for heading, lines in sections], room)
    return "\n".join(
        heading + text.tail(lines, share - len(heading))
        for (heading, lines), share in zip(sections, given, strict=True)
        if share > len(heading)
    )


def _minutes(count: int) -> str:
    return f"{count} minute" if count == 1 else f"{count} minutes"


def _where(build: BuildSpec, instance_id: str, instance_type: str | None = None) -> str:
    """The instance, its type (the one EC2 launched when known: a job may list several), platform and AMI."""
    kind = instance_type or build["instance_type"]
    return f"instance {instance_id} ({kind}, {build['platform']}, {build['image_id']})"


def _times(count: int) -> str:
    return "1 time" if count == 1 else f"{count} times"


def restarts(interruptions: int, instance: Mapping[str, Any]) -> str:
    """What a success summary's first line adds after spot interruptions: "; interrupted N time(s), finished on
    i-... (on-demand)" ("" when the build was never interrupted). An instance without `lifecycle` is on-demand."""
    if not interruptions:
        return ""
    lifecycle = instance.get("lifecycle") or "on-demand"
    return f"; interrupted {_times(interruptions)}, finished on {instance.get('instance_id', '')} ({lifecycle})"


def interruptions_line(interruptions: int, history: Sequence[Mapping[str, Any]]) -> str:
    """A failure's line about the spot interruptions before it ("" when none): which instances, in which step."""
    if not interruptions:
        return ""
    lost = ", ".join(
        f"{entry.get('instance_id') or 'an instance'}" + (f" during {entry['step']}" if entry.get("step") else "")
        for entry in history
    )
    where = f" ({lost})" if lost else ""
    return (
        f"The build was interrupted {_times(interruptions)} before this{where}: EC2 reclaimed its spot instance, and "
        "the build ran again from the start on a fresh one.\n"
    )


def command_result(
    outcome: dict[str, Any],
    build: BuildSpec,
    console: Console,
    note: str = "",
    instance: Mapping[str, Any] | None = None,
    interruptions: int = 0,
) -> Result:
    """The result of a command that ran to an end (the RunBuildCommand task's output); note goes before the output.
    `instance`: the state's (its actual type and purchase option); `interruptions`: the spot interruptions before the
    attempt that ran it (a success says so in its first line; a failure's note says so)."""
    instance = instance or {}
    where = _where(build, outcome["instance_id"], instance.get("instance_type"))
    location = log_location(console, outcome["log_group"], outcome["log_stream_prefix"])
    status, details, code = outcome["status"], outcome.get("status_details", ""), outcome.get("response_code")
    if status == "Success":
        head = f"Build succeeded on {where}{restarts(interruptions, instance)}.\n{note}{location}\n"
        summary = fit(head, _output(outcome, SUMMARY_LIMIT - len(head)), SUMMARY_LIMIT)
        return {"succeeded": True, "message": summary, "failure_type": None}
    if status == "TimedOut" and details == "DeliveryTimedOut":
        why = f"The build command was never delivered to {where}: Systems Manager lost contact with it."
    elif status == "TimedOut":
        why = f"The build exceeded its timeout of {_minutes(build['timeout_minutes'])} (TimeoutMinutes) on {where}."
    elif status in ("Cancelled", "Cancelling"):
        why = f"The build command was cancelled on {where} ({details or status})."
    elif code is None or code == -1:
        why = f"The build command did not run on {where} ({details or status})."
    else:
        why = f"The build failed with exit code {code} on {where}."
    head = f"{why}\n{note}{location}\n"
    message = fit(head, _output(outcome, MESSAGE_LIMIT - len(head)), MESSAGE_LIMIT)
    return {"succeeded": False, "message": message, "failure_type": JOB_FAILED}


def error_message(error: dict[str, Any]) -> str:
    """The readable part of a Step Functions error: the Lambda's errorMessage when the Cause carries one."""
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("Message") or cause)
    return cause


def capacity_timeout(waited_seconds: float | None, action: ActionType | None) -> str:
    """Why a job that waited for capacity until its timeout never ran (the queue's CapacityTimeout cause, and the
    report of the WaitForCapacity step's own timeout)."""
    waited = "until its timeout" if waited_seconds is None else _minutes(round(waited_seconds / 60))
    busy = (
        f"action {action.key} allows {action.cap} concurrent builds and all were busy"
        if action is not None
        else "all of the action's concurrent builds were busy"
    )
    return f"waited {waited} for capacity: {busy}; raise max_concurrent_builds or the build timeout"


def step_failure(
    step: str,
    error: dict[str, Any],
    build: BuildSpec | None,
    state: dict[str, Any],
    registration_seconds: int,
    note: str = "",
    action: ActionType | None = None,
) -> Result:
    """The result of a step that failed (its Catch put the error in $.error, the state machine its name in
    $.failed_step; empty for an execution started by a definition that did not record it); note lines go first.
    `action`: the job's action (its key and cap), for a job that waited for capacity until its timeout."""
    name, detail = error.get("Error", "Unknown"), error_message(error)
    failure_type = JOB_FAILED
    instance_id = (state.get("instance") or {}).get("instance_id", "")
    if name == "InvalidJobConfiguration":
        failure_type = CONFIGURATION_ERROR
        message = f"The action's configuration is invalid:\n{detail}"
    elif name == "NoCapacity":
        message = (
            f"No EC2 capacity for the build, even after retries: {detail}\n"
            "Choose another InstanceType, or give the module subnets in more Availability Zones."
        )
    elif name == "LaunchThrottled":
        message = (
            f"EC2 kept throttling the launch, even after retries over about 5 minutes: {detail}\n"
            "The account's EC2 API request rate is used up (by this module's bursts or by other tools in the account "
            "and Region): lower max_concurrent_builds, or spread the pipelines' starts."
        )
    elif name == "InstanceLaunchFailed":
        message = f"EC2 refused to launch the build instance: {detail}"
    elif name == "InstanceNotReady":
        message = (
            f"Instance {instance_id} did not come Online in Systems Manager within {registration_seconds} seconds. "
            "Check that: the AMI has the SSM Agent installed and starting at boot (3.3.2746.0 or newer); the subnet "
            "reaches the Systems Manager endpoints (ssm, ssmmessages, ec2messages) through a NAT gateway or VPC "
            "interface endpoints, and the security group allows outbound HTTPS; the builder role keeps its ssm-agent "
            "policy. The instance's system log (EC2 console, Monitor and troubleshoot) shows boot problems. "
            f"Last check: {detail}"
        )
    elif name == "InstanceLost" and step == "RunBuildCommand":
        message = f"The build instance went away: {detail}"
    elif name == "InstanceLost":
        message = f"The build instance went away before the build ran: {detail}"
    elif name == "States.Timeout" and step == "WaitForCapacity":
        # Step Functions' backstop (TimeoutSecondsPath: the build's task timeout) when no keeper pass expired it.
        waited = build["task_timeout_seconds"] if build else None
        message = f"The build never started: it {capacity_timeout(waited, action)}."
    elif name == "CapacityTimeout":
        message = f"The build never started: it {detail}."
    elif name == "States.Timeout" and step == "RunBuildCommand" and build:
        message = (
            f"The build exceeded its timeout of {_minutes(build['timeout_minutes'])} (TimeoutMinutes) plus "
            f"{_minutes((build['task_timeout_seconds'] - build['command_timeout_seconds']) // 60)} for artifact "
            f"transfer on instance {instance_id}; it was stopped and the instance terminated."
        )
    else:
        failed = f"The {step} step failed" if step else "A step of the build failed"
        message = f"{failed}: {name}: {detail or 'no details'}"
    return {"succeeded": False, "message": fit(note + message, "", MESSAGE_LIMIT), "failure_type": failure_type}


def release_warning(release_error: dict[str, Any], instance_id: str) -> str:
    """A line saying the instance could not be terminated; it still shuts itself down at its deadline."""
    return (
        f"Warning: the build instance {instance_id or '(unknown)'} could not be terminated "
        f"({release_error.get('Error', 'Unknown')}: {error_message(release_error)}); it shuts itself down at the "
        "time in its ec2-action:deadline tag.\n"
    )


def never_started(job_id: str, execution_arn: str, start_error: str | None = None) -> Result:
    """The reaper's result for a claimed job whose execution could not be started (the last error, if any)."""
    why = f" The last attempt failed with {start_error}." if start_error else ""
    message = (
        f"The build was never started: no execution for job {job_id} (expected {execution_arn}). "
        f"The job was taken but its execution could not be started.{why} Retry the stage."
    )
    return {"succeeded": False, "message": fit(message, "", MESSAGE_LIMIT), "failure_type": JOB_FAILED}


def unreported_execution(execution_arn: str, status: str, error: dict[str, Any]) -> Result:
    """The reaper's result for a job whose execution ended (status, DescribeExecution's error/cause) unreported."""
    name, detail = error.get("Error") or "", error_message(error)
    why = ": ".join(part for part in (name, detail) if part) or "no error or cause recorded"
    message = f"The execution {execution_arn} ended with status {status} without reporting the job: {why}"
    return {"succeeded": False, "message": fit(message, "", MESSAGE_LIMIT), "failure_type": JOB_FAILED}
