"""The SSM Agent in the emulator: registration, command execution in a subprocess, output to CloudWatch Logs, and
the status-change events.

Registration: a running EC2 instance launched with an IAM instance profile (from the request or its launch template,
for every instance of the call) comes Online in DescribeInstanceInformation `registration_delay()` AWS seconds after
launch (LOCALCLOUD_SSM_REGISTRATION_DELAY, default 20), unless faults.never_register says otherwise. A registered
instance that is not running (stopping, stopped, pending) is ConnectionLost; after a StartInstances its agent is back
Online `reconnect_delay()` AWS seconds after the instance runs (LOCALCLOUD_SSM_RECONNECT_DELAY_SECONDS, default 5: the
service starting and reconnecting once the operating system is up).

Disk: each instance has one directory tree (its HOME, TMPDIR and the agent's orchestration directory), which every
command on it shares: files persist across commands and across stop and start, and go when the instance is
terminated (``discard``).

An instance terminated while a step runs takes its agent with it: the step's process dies, and nothing reports its end
(no output, no status-change event); the invocation stays InProgress until Systems Manager gives up on it once the
step's execution timeout has passed since it started (TimedOut, "Execution Timed Out", no output), or until a
CancelCommand ends it (Cancelled). An instance stopped while a step runs fails the step (the agent reports it when
its instance is back).

Commands (accepted by the API layer, ``emulator.ssm.models``): one agent thread per instance runs the deployed
document like SSM Agent 3.3: preconditions (platformType), `aws:runShellScript` steps as `sh _script.sh` in a
per-instance work dir with ENV_VAR parameters as `SSM_<Name>` variables and `{{ }}` interpolation only for the others,
the step's timeoutSeconds in AWS time, per-plugin results, CloudWatch output, and "EC2 Command Invocation
Status-change Notification" events. Output as the agent reports it: the API has the beginning of each stream (cut
like the agent cuts it, ``agent_cut``), CloudWatch Logs all of it, in the agent's multi-line events, complete before
the step's status shows its end. Windows steps are not emulated: they fail with a clear message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator import clock, faults
from emulator.ssm.commands import (
    FINISHED,
    AgentCommand,
    CommandState,
    Invocation,
    Plugin,
    iso,
    lock,
    now,
    overall,
    status_details,
    update_command,
)

AGENT_VERSION = "3.3.2746.0"
WORK_ROOT = Path(tempfile.gettempdir()) / f"localcloud-{os.getuid()}" / "ssm"
MAX_STDOUT = 24_000
MAX_STDERR = 8_000
AGENT_CUT_SUFFIX = "--output truncated--"  # what the agent appends to output it cut (pluginutil.StringPrefix)
CLOUDWATCH_EVENT_CHARS = 200_000  # the agent's MessageLengthThresholdInBytes (cloudwatchlogsservice.go)
CLOUDWATCH_EVENTS_PER_CALL = 4  # the agent's maxNumberOfEventsPerCall
STOPPED_EXIT_CODE = 137  # what the agent reports for a step it killed (timeout, cancel)
DEFAULT_STEP_TIMEOUT = 3600
WINDOWS_MESSAGE = (
    "the local cloud cannot run Windows (aws:runPowerShellScript) steps: there is no PowerShell here. "
    "Test Windows builds on AWS."
)
SKIPPED_MESSAGE = "Step execution skipped due to unsatisfied preconditions: '{0}'"

EventSink = Callable[..., None]
_event_sink: EventSink | None = None
_launches: dict[str, _Launch] = {}
_processes: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
_generation = 0  # bumped by reset(): a wait for a lost agent's step ends with the cloud it began in
GONE = ("shutting-down", "terminated")
LOST_POLL_SECONDS = 0.2


@dataclass
class _Launch:
    at: float  # time.monotonic() at launch
    never_registers: bool
    wall: float  # time.time() at launch (for timelines)
    reconnects_at: float | None = None  # time.monotonic() the agent is back after the last StartInstances
    started_wall: float | None = None  # time.time() of the last StartInstances (for timelines)
    reconnects_wall: float | None = None  # time.time() the agent is back after it


def registration_delay() -> float:
    """AWS seconds between launch and Online (LOCALCLOUD_SSM_REGISTRATION_DELAY, default 20)."""
    return float(os.environ.get("LOCALCLOUD_SSM_REGISTRATION_DELAY", "20"))


def reconnect_delay() -> float:
    """AWS seconds between a started instance running and its agent Online (LOCALCLOUD_SSM_RECONNECT_DELAY_SECONDS,
    default 5)."""
    return float(os.environ.get("LOCALCLOUD_SSM_RECONNECT_DELAY_SECONDS", "5"))


def set_event_sink(sink: EventSink | None) -> None:
    """Where status-change events go: a callable with emulator.events.emit's signature; None: that function."""
    global _event_sink
    _event_sink = sink


def _emit(detail_type: str, detail: dict[str, Any], account: str, region: str, resources: list[str]) -> None:
    sink = _event_sink
    if sink is None:
        try:
            from emulator.events import emit as sink
        except ImportError:
            return
    sink("aws.ssm", detail_type, detail, account, region, resources=resources)


def ec2_backend(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def instances(account: str, region: str) -> Iterator[Any]:
    for reservation in list(ec2_backend(account, region).reservations.values()):
        yield from reservation.instances


def profile(instance: Any) -> Any:
    association = instance.ec2_backend.iam_instance_profile_associations.get(instance.id)
    return association.iam_instance_profile if association else None


def platform_type(instance: Any) -> str:
    return "Windows" if (instance.platform or "").lower() == "windows" else "Linux"


def registered(instance: Any) -> bool:
    """Has the agent on `instance` registered (whatever the instance's state now)?"""
    launch = _launches.get(instance.id)
    if launch is None or launch.never_registers or profile(instance) is None:
        return False
    if faults.registration_blocked(instance):
        return False
    return time.monotonic() - launch.at >= clock.real_seconds(registration_delay())


def launch_times(instance_id: str) -> tuple[float, float | None] | None:
    """(when RunInstances launched the instance, when its agent registers or registered, None if it never does),
    as epoch seconds, for timelines; None for an instance the local cloud did not launch."""
    launch = _launches.get(instance_id)
    if launch is None:
        return None
    registers = None if launch.never_registers else launch.wall + clock.real_seconds(registration_delay())
    return launch.wall, registers


def restarted(instance_id: str, start_delay: float) -> None:
    """StartInstances: the instance runs in `start_delay` AWS seconds, and its agent reconnects reconnect_delay()
    after that (ConnectionLost until then)."""
    with lock:
        launch = _launches.get(instance_id)
        if launch is not None:
            launch.reconnects_at = time.monotonic() + clock.real_seconds(start_delay + reconnect_delay())
            launch.started_wall = time.time()
            launch.reconnects_wall = launch.started_wall + clock.real_seconds(start_delay + reconnect_delay())


def start_times(instance_id: str) -> tuple[float, float] | None:
    """(when the last StartInstances started the instance, when its agent is back Online after it), as epoch seconds,
    for timelines; None for an instance never started after its launch."""
    launch = _launches.get(instance_id)
    if launch is None or launch.started_wall is None or launch.reconnects_wall is None:
        return None
    return launch.started_wall, launch.reconnects_wall


def online(instance: Any) -> bool:
    """Is the agent on `instance` connected now (PingStatus Online)?"""
    if instance._state.name != "running" or not registered(instance):
        return False
    launch = _launches.get(instance.id)
    return launch is None or launch.reconnects_at is None or time.monotonic() >= launch.reconnects_at


def _launch_template_profile(backend: Any, kwargs: dict[str, Any]) -> dict[str, str]:
    if not kwargs.get("launch_template"):
        return {}
    data = backend._get_template_from_args(kwargs["launch_template"]).data
    return data.get("IamInstanceProfile") or {}


def run_instances(original: Callable[..., Any]) -> Callable[..., Any]:
    """EC2 RunInstances: every instance gets the instance profile (the request's or the launch template's)."""

    def run_instances(self: Any, image_id: str, count: int, user_data: Any, security_group_names: Any, **kwargs: Any):
        reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
        requested = {"Name": kwargs.get("iam_instance_profile_name"), "Arn": kwargs.get("iam_instance_profile_arn")}
        # The RunInstances response associates the requested profile with the first instance itself.
        first = 1 if any(requested.values()) else 0
        profile = requested if any(requested.values()) else _launch_template_profile(self, kwargs)
        for instance in reservation.instances[first:]:
            if any(profile.values()):
                self.associate_iam_instance_profile(
                    instance_id=instance.id,
                    iam_instance_profile_name=profile.get("Name"),
                    iam_instance_profile_arn=profile.get("Arn"),
                )
        with lock:
            for instance in reservation.instances:
                _launches[instance.id] = _Launch(time.monotonic(), faults.take_unregistered_launch(), time.time())
        return reservation

    return run_instances


def emit_invocation(backend: Any, command: Any, instance_id: str, status: str) -> None:
    detail = {
        "command-id": command.command_id,
        "document-name": command.document_name,
        "instance-id": instance_id,
        "requested-date-time": iso(command.requested_date_time.replace(tzinfo=dt.UTC)),
        "status": status,
    }
    arn = f"arn:aws:ec2:{backend.region_name}:{backend.account_id}:instance/{instance_id}"
    _emit("EC2 Command Invocation Status-change Notification", detail, backend.account_id, backend.region_name, [arn])


def set_invocation(backend: Any, command: Any, invocation: Invocation, status: str) -> None:
    """Move an invocation (and the command's aggregate) to `status`, and announce it."""
    with lock:
        if invocation.status == status or invocation.status in FINISHED:
            return
        invocation.status, invocation.details = status, status_details(status)
        if status == "InProgress":
            invocation.started = now()
        if status in FINISHED:
            invocation.finished = now()
        update_command(command)
    emit_invocation(backend, command, invocation.instance_id, status)


def _agent(backend: Any, command: Any, instance_id: str) -> None:
    state: CommandState = command.run_state
    invocation = state.invocations[instance_id]
    if invocation.cancelled.is_set():
        return
    set_invocation(backend, command, invocation, "InProgress")
    if faults.take_hung_command(instance_id):
        return
    try:
        _run_steps(backend, command, invocation)
    except Exception as exc:  # a bug here must not leave the command InProgress forever
        for plugin in invocation.plugins:
            if plugin.status not in FINISHED:
                plugin.finish("Failed", -1, "", f"the local cloud's agent failed: {exc!r}\n")
        raise
    finally:
        if not any(plugin.status == "InProgress" for plugin in invocation.plugins):  # else: a lost step, reset
            set_invocation(backend, command, invocation, overall([p.status for p in invocation.plugins]))


def _run_steps(backend: Any, command: Any, invocation: Invocation) -> None:
    instance = ec2_backend(backend.account_id, backend.region_name).get_instance(invocation.instance_id)
    steps = command.run_state.document.content_json.get("mainSteps") or []
    for step, plugin in zip(steps, invocation.plugins, strict=True):
        if invocation.lost:
            return  # the agent died with its instance: the steps after the lost one never run
        if instance._state.name in GONE:
            invocation.lost = True
            _given_up(plugin, invocation, time.monotonic() + clock.real_seconds(_step_timeout(command, step)))
            return
        plugin.on_output = lambda done: _write_cloudwatch(backend, command, invocation.instance_id, done)
        _run_step(backend, command, instance, step, plugin, invocation)


def _precondition(step: dict[str, Any], instance: Any) -> tuple[bool, str]:
    condition = step.get("precondition")
    if not condition:
        return True, ""
    (operator, (left, right)), *_ = condition.items()
    operands = {"platformType": platform_type(instance)}
    satisfied = operator == "StringEquals" and operands.get(left, left) == operands.get(right, right)
    return satisfied, f'"{operator}": [{left}, {right}]'


def _run_step(backend: Any, command: Any, instance: Any, step: dict, plugin: Plugin, inv: Invocation) -> None:
    plugin.started = now()
    if inv.cancelled.is_set():
        plugin.finish("Cancelled", -1, "", "")
        return
    satisfied, condition = _precondition(step, instance)
    if not satisfied:
        plugin.finish("Success", 0, SKIPPED_MESSAGE.format(condition), "")
        return
    plugin.status = plugin.details = "InProgress"
    if step["action"] == "aws:runShellScript":
        _run_shell(backend, command, instance, step, plugin, inv)
    elif step["action"] == "aws:runPowerShellScript":
        plugin.finish("Failed", 1, "", WINDOWS_MESSAGE)
    else:
        plugin.finish("Failed", 1, "", f"the local cloud's agent does not emulate the plugin {step['action']}")


def _interpolate(value: Any, values: dict[str, str], env_params: set[str]) -> Any:
    """`{{ name }}` is replaced only for parameters without interpolationType ENV_VAR (those stay literal)."""
    if isinstance(value, dict):
        return {key: _interpolate(item, values, env_params) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, values, env_params) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0) if name in env_params or name not in values else values[name]

    return re.sub(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}", replace, value)


def _instance_dir(instance_id: str) -> Path:
    root = WORK_ROOT / instance_id
    for name in ("tmp", "home"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return root


def _step_env(backend: Any, instance_id: str, root: Path, values: dict[str, str], env_params: set[str]) -> dict:
    from moto import settings

    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
        "LANG": "C.UTF-8",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{settings.moto_server_port()}",
        "AWS_ACCESS_KEY_ID": "ASIALOCALCLOUDINSTANCE",
        "AWS_SECRET_ACCESS_KEY": "local-cloud-instance-secret",
        "AWS_SESSION_TOKEN": "local-cloud-instance-session",
        "AWS_REGION": backend.region_name,
        "AWS_DEFAULT_REGION": backend.region_name,
        "AWS_SSM_INSTANCE_ID": instance_id,
        "AWS_SSM_REGION_NAME": backend.region_name,
        **{f"SSM_{name}": values[name] for name in env_params},
    }


def _inputs(command: Any, step: dict) -> tuple[dict[str, Any], set[str]]:
    """The step's inputs with `{{ }}` parameters interpolated, and the ENV_VAR parameters' names."""
    state: CommandState = command.run_state
    declared = state.document.content_json.get("parameters") or {}
    env_params = {name for name, spec in declared.items() if spec.get("interpolationType") == "ENV_VAR"}
    return _interpolate(step.get("inputs") or {}, state.values, env_params), env_params


def _step_timeout(command: Any, step: dict) -> int:
    inputs, _ = _inputs(command, step)
    return int(inputs.get("timeoutSeconds") or DEFAULT_STEP_TIMEOUT)


def _run_shell(backend: Any, command: Any, instance: Any, step: dict, plugin: Plugin, inv: Invocation) -> None:
    state: CommandState = command.run_state
    inputs, env_params = _inputs(command, step)
    lines = inputs.get("runCommand") or []
    timeout = int(inputs.get("timeoutSeconds") or DEFAULT_STEP_TIMEOUT)
    with contextlib.ExitStack() as files:
        with lock:  # against discard(): the instance's disk exists while a step runs on it
            root = _instance_dir(instance.id)
            work = root / "orchestration" / command.command_id / plugin.name
            work.mkdir(parents=True, exist_ok=True)
            (work / "_script.sh").write_text("\n".join(lines if isinstance(lines, list) else [lines]) + "\n")
            process = subprocess.Popen(
                ["sh", "_script.sh"],
                cwd=work,
                env=_step_env(backend, instance.id, root, state.values, env_params),
                stdin=subprocess.DEVNULL,
                stdout=files.enter_context(open(work / "stdout", "wb")),
                stderr=files.enter_context(open(work / "stderr", "wb")),
                start_new_session=True,
            )
            _processes[(command.command_id, instance.id)] = process
        started = time.monotonic()
        ending = _watch(process, instance, inv, clock.real_seconds(timeout))
    stdout, stderr = _output(work / "stdout"), _output(work / "stderr")
    with lock:
        _processes.pop((command.command_id, instance.id), None)
        if instance._state.name in GONE and not _busy(instance.id):
            _remove_disk(instance.id)
    if ending == "lost":
        inv.lost = True
        _given_up(plugin, inv, started + clock.real_seconds(timeout))
        return
    _finish_shell(plugin, ending, process.returncode, stdout, stderr)


def _given_up(plugin: Plugin, inv: Invocation, deadline: float) -> None:
    """The step's agent died with its instance: nothing reports the step. Systems Manager ends it once its execution
    timeout has passed (TimedOut, no output: the agent never uploaded any), or when a CancelCommand comes first."""
    generation = _generation
    while time.monotonic() < deadline and not inv.cancelled.is_set():
        if generation != _generation:
            return  # the cloud was reset
        time.sleep(min(LOST_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    plugin.on_output = None  # no output to upload
    if inv.cancelled.is_set():
        plugin.finish("Cancelled", -1, "", "")
    else:
        plugin.finish("TimedOut", -1, "", "", "Execution Timed Out")


def _output(path: Path) -> str:
    """A step's output as written (read_text would turn carriage returns into newlines); none if its instance's disk
    is already gone (a reset)."""
    try:
        return path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _watch(process: subprocess.Popen[bytes], instance: Any, inv: Invocation, limit: float) -> str:
    """Wait for the step: 'exited', or why it was stopped: 'timeout', 'cancelled', 'stopped' (its instance stopped),
    'lost' (its instance is shutting down or terminated: the agent dies with it)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            process.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            return "exited"
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            reason = "timeout"
        elif inv.cancelled.is_set():
            reason = "cancelled"
        elif instance._state.name in GONE:
            reason = "lost"
        elif instance._state.name != "running":
            reason = "stopped"
        else:
            continue
        _kill(process)
        return reason


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _finish_shell(plugin: Plugin, ending: str, code: int, stdout: str, stderr: str) -> None:
    if ending == "timeout":
        plugin.finish("TimedOut", STOPPED_EXIT_CODE, stdout, stderr, "Execution Timed Out")
    elif ending == "cancelled":
        plugin.finish("Cancelled", STOPPED_EXIT_CODE, stdout, stderr)
    elif ending == "stopped":
        note = "the instance stopped while the command ran"
        plugin.finish("Failed", -1, stdout, f"{stderr}{note}\n")
    elif code == 0:
        plugin.finish("Success", 0, stdout, stderr)
    else:
        plugin.finish("Failed", code, stdout, f"{stderr}failed to run commands: exit status {code}\n")


def _write_cloudwatch(backend: Any, command: Any, instance_id: str, plugin: Plugin) -> None:
    """Full step output to CloudWatch Logs, as the agent does with SendCommand's CloudWatchOutputConfig: streams
    `<command id>/<instance id>/<step name>/stdout` and `/stderr`, created only for output there is."""
    from moto.logs.models import logs_backends

    config = command.run_state.cloudwatch
    if not config.get("CloudWatchOutputEnabled"):
        return
    group = config.get("CloudWatchLogGroupName") or f"/aws/ssm/{command.document_name}"
    logs = logs_backends[backend.account_id][backend.region_name]
    logs.ensure_log_group(group)
    for name, text in (("stdout", plugin.stdout), ("stderr", plugin.stderr)):
        if text:
            stream = f"{command.command_id}/{instance_id}/{plugin.name}/{name}"
            logs.ensure_log_stream(group, stream)
            messages = cloudwatch_events(text)
            for start in range(0, len(messages), CLOUDWATCH_EVENTS_PER_CALL):
                now = int(time.time() * 1000)
                batch = messages[start : start + CLOUDWATCH_EVENTS_PER_CALL]
                logs.put_log_events(group, stream, [{"timestamp": now, "message": message} for message in batch])


def start(backend: Any, command: AgentCommand, instance_id: str) -> None:
    """The agent on ``instance_id`` receives the command: it runs in a thread of its own."""
    threading.Thread(target=_agent, args=(backend, command, instance_id), daemon=True).start()


def _busy(instance_id: str) -> bool:
    return any(running_on == instance_id for _, running_on in _processes)


def _remove_disk(instance_id: str) -> None:
    shutil.rmtree(WORK_ROOT / instance_id, ignore_errors=True)


def disk(instance_id: str) -> Path:
    """The directory tree that stands for the instance's disk (HOME and TMPDIR of its commands are inside)."""
    return WORK_ROOT / instance_id


def discard(instance_id: str) -> None:
    """The instance was terminated: its disk goes, now or once the step still running on it has been killed (the
    step's end removes it)."""
    with lock:
        if not _busy(instance_id):
            _remove_disk(instance_id)


def running(command_id: str, instance_id: str) -> bool:
    """Is a step of the command running on the instance now?"""
    with lock:
        return (command_id, instance_id) in _processes


def cloudwatch_events(text: str) -> list[str]:
    """Output as the agent uploads it once the step has ended: whole lines, as many to an event as fit in
    CLOUDWATCH_EVENT_CHARS (a longer line is split), CRLF as LF, and each event without its final newline."""
    events: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        for piece in (line[i : i + CLOUDWATCH_EVENT_CHARS] for i in range(0, len(line), CLOUDWATCH_EVENT_CHARS)):
            if current and len(current) + len(piece) > CLOUDWATCH_EVENT_CHARS:
                events.append(current)
                current = ""
            current += piece
    if current:
        events.append(current)
    return [event.replace("\r\n", "\n").removesuffix("\n") for event in events]


def agent_cut(output: str, limit: int) -> str:
    """Output as the agent reports it to Systems Manager: cut to limit bytes, the cut marked (StringPrefix)."""
    data = output.encode()
    if len(data) < limit:
        return output
    return data[: limit - len(AGENT_CUT_SUFFIX)].decode(errors="replace") + AGENT_CUT_SUFFIX


def reset() -> None:
    """Stop every running step, forget launches and remove their disks (moto's own reset forgets commands)."""
    global _generation
    with lock:
        _generation += 1
        processes = list(_processes.values())
        _processes.clear()
        launched = list(_launches)
        _launches.clear()
    for process in processes:
        _kill(process)
    for instance_id in launched:
        shutil.rmtree(WORK_ROOT / instance_id, ignore_errors=True)
