"""The end of a build command: read it from Systems Manager and hand it to the waiting RunBuildCommand task.

Used by command_event (SSM's status-change event) and by the poller's sweep (the fallback for a lost event).

GetCommandInvocation returns only the first characters of each output stream (INVOCATION_LIMITS); a build that
printed more is read from its end in the build log group, where the SSM Agent wrote all of it (SendCommand's
CloudWatchOutputConfig: one stream per command, instance, step and output stream). Only when that stream cannot be
read are the last lines of the returned beginning shown, and the task output says so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import aws, log, text
from .config import load

TERMINAL = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
TAIL_CHARS = 4000
DEAD_TOKEN_ERRORS = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")
# What GetCommandInvocation returns of each stream: its first 24,000 (stdout) or 8,000 (stderr) characters. The SSM
# Agent cuts at that many bytes and ends what it kept with AGENT_CUT_SUFFIX (pluginutil.StringPrefix).
INVOCATION_LIMITS = {"stdout": 24_000, "stderr": 8_000}
STREAM_WORDS = {"stdout": "output", "stderr": "errors"}
AGENT_CUT_SUFFIX = "--output truncated--"
# Reading a stream's end: GetLogEvents from the end (a page holds at most 1 MB), a bounded number of pages back.
LOG_EVENTS_PER_PAGE = 100
MAX_LOG_PAGES = 3
REASON_CHARS = 300
# The line the build document's step prints last on stderr when a pooled instance must not serve another job (its
# reset command or workspace clean-up failed): ssm/linux/run-build.sh, ssm/windows/run-build.ps1.
RETIRE_PREFIX = "ec2-action: retire-instance: "
# Why an instance is retired when the end of its errors is unknown (the log stream could not be read and Systems
# Manager returned only the beginning): whether the clean-up succeeded cannot be told, so the instance is not reused.
UNKNOWN_CLEANUP = "the end of the build's errors could not be read, so whether the reset command succeeded is unknown"


def plugin_name(platform: str) -> str:
    """The build document's step that runs on this platform (the other one is skipped by its precondition)."""
    return "BuildOnWindows" if platform == "Windows" else "BuildOnLinux"


class EmptyLogStream(Exception):
    """The output's log stream exists but returned no events."""


def read(command_id: str, instance_id: str, plugin_name: str) -> dict[str, Any] | None:
    """The task output of a finished command (DESIGN.md, command_event), or None while it still runs."""
    invocation = aws.client("ssm").get_command_invocation(
        CommandId=command_id, InstanceId=instance_id, PluginName=plugin_name
    )
    if invocation["Status"] not in TERMINAL:
        return None
    group, prefix = load().build_log_group, f"{command_id}/{instance_id}/{plugin_name}"
    stdout_tail, stdout_note = _tail("stdout", invocation.get("StandardOutputContent", ""), group, prefix)
    stderr_tail, stderr_note = _tail("stderr", invocation.get("StandardErrorContent", ""), group, prefix)
    output: dict[str, Any] = {
        "command_id": command_id,
        "instance_id": instance_id,
        "status": invocation["Status"],
        **_run_times(invocation),
        "status_details": invocation.get("StatusDetails", ""),
        "response_code": invocation.get("ResponseCode", -1),
        "stdout_tail": stdout_tail,
        "stderr_tail": stderr_tail,
        "stdout_note": stdout_note,
        "stderr_note": stderr_note,
        "log_group": group,
        "log_stream_prefix": prefix,
    }
    retire = retire_reason(stderr_tail, stderr_note)
    if retire:
        output["retire"] = retire
    return output


def _run_times(invocation: dict[str, Any]) -> dict[str, float]:
    """When the command ran on the instance, as epochs `started_at` and `ended_at` (the report's BuildSeconds and
    time to command), from GetCommandInvocation's ISO 8601 ExecutionStartDateTime and ExecutionEndDateTime; a time
    that is absent or unreadable (a command that never ran has none) is left out."""
    times = {}
    for key, field in (("started_at", "ExecutionStartDateTime"), ("ended_at", "ExecutionEndDateTime")):
        try:
            moment = datetime.fromisoformat(str(invocation.get(field) or "").replace("Z", "+00:00"))
        except ValueError:
            continue
        times[key] = round((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp(), 3)
    return times


def retire_reason(stderr_tail: str, stderr_note: str = "") -> str | None:
    """Why the instance must be retired after this command, as the step's last retire line says (the last one wins);
    None when the step printed none. When the end of the errors is unknown (stderr_note set), that is the reason."""
    found = [line[len(RETIRE_PREFIX) :].strip() for line in stderr_tail.splitlines() if line.startswith(RETIRE_PREFIX)]
    if found:
        return found[-1][:REASON_CHARS] or "the build document asked for it"
    return UNKNOWN_CLEANUP if stderr_note else None


def may_be_cut(content: str, limit: int) -> bool:
    """Whether GetCommandInvocation may have cut content at its limit. Below the limit, counted in UTF-8 bytes (never
    fewer than the characters), content is the whole stream; a cut at a byte count can fall 3 bytes short of it."""
    return len(content.encode("utf-8", "replace")) >= limit - 3


def _tail(stream: str, content: str, group: str, prefix: str) -> tuple[str, str]:
    """(the last lines of one output stream, a note when they are not the stream's end, else "")."""
    limit = INVOCATION_LIMITS[stream]
    if not may_be_cut(content, limit):
        return text.tail(text.clean(content), TAIL_CHARS), ""
    try:
        logged = log_tail(group, f"{prefix}/{stream}")
    except (ClientError, BotoCoreError, EmptyLogStream) as exc:
        reason = _reason(exc)
    else:
        return text.tail(text.clean(logged), TAIL_CHARS), ""
    log.warning("the build output's log stream could not be read", stream=f"{prefix}/{stream}", reason=reason)
    beginning = content.removesuffix(AGENT_CUT_SUFFIX)
    if "\n" in beginning:  # the cut split the last line: keep whole lines
        beginning = beginning[: beginning.rfind("\n") + 1]
    note = f"first {limit:,} characters of {STREAM_WORDS[stream]}; the log stream could not be read: {reason}"
    return text.tail(text.clean(beginning), TAIL_CHARS), note


def log_tail(group: str, stream: str) -> str:
    """The end of a log stream as text, at least TAIL_CHARS characters of it when it has them, from at most
    MAX_LOG_PAGES GetLogEvents calls. The SSM Agent uploads whole lines, many to an event, and drops the newline
    that ends an event uploaded after the step ended: every event is made to end with one."""
    client = aws.client("logs")
    pages: list[str] = []
    size, token = 0, None
    for _ in range(MAX_LOG_PAGES):
        request = {"logGroupName": group, "logStreamName": stream, "startFromHead": False, "limit": LOG_EVENTS_PER_PAGE}
        if token:
            request["nextToken"] = token
        page = client.get_log_events(**request)
        messages = (event["message"] for event in page.get("events", []))
        pages.insert(0, "".join(m if m.endswith("\n") else m + "\n" for m in messages))
        size += len(pages[0])
        previous, token = token, page.get("nextBackwardToken")
        if size > TAIL_CHARS or not token or token == previous:  # enough, or the stream's beginning
            break
    if not size:
        raise EmptyLogStream("it holds no log events")
    return "".join(pages)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        reason = ": ".join(part for part in (error.get("Code"), error.get("Message")) if part)
    else:
        reason = str(exc)
    return text.clean(reason or type(exc).__name__)[:REASON_CHARS]


# SendCommand's RequestedDateTime comes from SSM's clock, awaited_at from the Lambda's: this much apart still counts as
# the same attempt (a retried attempt comes seconds later, after the state machine's Retry interval).
CLOCK_TOLERANCE_SECONDS = 1.0


def is_current(command: dict[str, Any], item: dict[str, Any]) -> bool:
    """Whether a command (ListCommands' shape) came from the item's latest RunBuildCommand attempt, not an older one."""
    awaited_at = float(item.get("awaited_at") or 0)
    return bool(command["RequestedDateTime"].timestamp() >= awaited_at - CLOCK_TOLERANCE_SECONDS)


def awaited(item: dict[str, Any]) -> dict[str, Any] | None:
    """The command the item's task token awaits (ListCommands' shape, its Status included), found on its instance:
    this module's document, the job's id as its comment, sent by the latest attempt; None before it was sent."""
    commands = aws.client("ssm").list_commands(InstanceId=item["instance_id"])["Commands"]
    ours = [
        command
        for command in commands
        if command.get("DocumentName") == load().document_name
        and command.get("Comment") == item["job_id"]
        and is_current(command, item)
    ]
    return max(ours, key=lambda command: command["RequestedDateTime"], default=None)


def awaited_command(item: dict[str, Any]) -> str | None:
    """The id of the command the item's task token awaits (the sweep's way, when the event that names it was lost)."""
    command = awaited(item)
    return str(command["CommandId"]) if command else None


def ended_commands(items: list[dict[str, Any]]) -> dict[str, str]:
    """The ended commands the items' task tokens await, by job id: one paginated ListCommands of this module's
    document (ended ones, sent since the oldest item began to wait) for all of them, so that the sweep's cost does
    not grow with the number of builds running or with how long they run. No call when no item awaits a command."""
    awaited = {item["job_id"]: item for item in items if item.get("task_token") and item.get("instance_id")}
    if not awaited:
        return {}
    since = min(float(item.get("awaited_at") or item.get("created_at") or 0) for item in awaited.values())
    filters = [
        {"key": "DocumentName", "value": load().document_name},
        {"key": "ExecutionStage", "value": "Complete"},
        {"key": "InvokedAfter", "value": _iso(since - CLOCK_TOLERANCE_SECONDS)},
    ]
    found: dict[str, dict[str, Any]] = {}
    for page in aws.client("ssm").get_paginator("list_commands").paginate(Filters=filters):
        for command in page["Commands"]:
            item = awaited.get(command.get("Comment", ""))
            if item is None or item["instance_id"] not in command.get("InstanceIds", []):
                continue
            newest = found.get(item["job_id"])
            if is_current(command, item) and (
                newest is None or command["RequestedDateTime"] > newest["RequestedDateTime"]
            ):
                found[item["job_id"]] = command
    return {job_id: command["CommandId"] for job_id, command in found.items()}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(max(epoch, 0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver(item: dict[str, Any], command_id: str) -> bool:
    """If the item's command has ended, complete its task token; True when the execution received the outcome. The
    token stays in the item until the report stores the result: a second delivery meets a closed task, harmlessly."""
    output = read(command_id, item["instance_id"], item["plugin_name"])
    if output is None:
        return False
    token = item["task_token"]
    delivered = True
    try:
        aws.client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as exc:
        if aws.error_code(exc) not in DEAD_TOKEN_ERRORS:
            raise
        log.warning("the task no longer waits for this command", error=aws.error_code(exc), command_id=command_id)
        delivered = False
    if delivered:
        log.info(
            "command outcome delivered",
            command_id=command_id,
            status=output["status"],
            response_code=output["response_code"],
            retire=output.get("retire"),
        )
    return delivered
