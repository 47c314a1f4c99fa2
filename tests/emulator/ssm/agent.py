"""Systems Manager in the local cloud: instance registration and an emulated SSM Agent that runs Run Command steps.

Registration: a running EC2 instance launched with an IAM instance profile (from the request or its launch template,
for every instance of the call) comes Online in DescribeInstanceInformation `registration_delay()` AWS seconds after
launch (LOCALCLOUD_SSM_REGISTRATION_DELAY, default 20), unless faults.never_register says otherwise.

SendCommand: only Online instances are accepted (else InvalidInstanceId), parameters are checked against the
document, then one agent thread per instance runs the deployed document like SSM Agent 3.3: preconditions
(platformType), `aws:runShellScript` steps as `sh _script.sh` in a per-instance work dir with ENV_VAR parameters as
`SSM_<Name>` variables and `{{ }}` interpolation only for the others, the step's timeoutSeconds in AWS time,
per-plugin results, CloudWatch output, and "EC2 Command Invocation Status-change Notification" events.
Output as the agent reports it: GetCommandInvocation has the beginning of each stream (cut like the agent cuts it),
CloudWatch Logs all of it, in the agent's multi-line events, complete before the step's status shows its end.
Windows steps are not emulated: they fail with a clear message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud import clock, faults

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
FINISHED = {"Success", "Failed", "TimedOut", "Cancelled"}

EventSink = Callable[..., None]
_event_sink: EventSink | None = None
_lock = threading.RLock()
_launches: dict[str, _Launch] = {}
_processes: dict[tuple[str, str], subprocess.Popen[bytes]] = {}


@dataclass
class _Launch:
    at: float  # time.monotonic() at launch
    never_registers: bool


def registration_delay() -> float:
    """AWS seconds between launch and Online (LOCALCLOUD_SSM_REGISTRATION_DELAY, default 20)."""
    return float(os.environ.get("LOCALCLOUD_SSM_REGISTRATION_DELAY", "20"))


def set_event_sink(sink: EventSink | None) -> None:
    """Where status-change events go: a callable with localcloud.events.emit's signature; None: that function."""
    global _event_sink
    _event_sink = sink


def _emit(detail_type: str, detail: dict[str, Any], account: str, region: str, resources: list[str]) -> None:
    sink = _event_sink
    if sink is None:
        try:
            from localcloud.events import emit as sink
        except ImportError:
            return
    sink("aws.ssm", detail_type, detail, account, region, resources=resources)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _error(code: str, message: str) -> Exception:
    from moto.ssm.exceptions import SSMException

    return SSMException(code, message)


# ---------------------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------------------


def _ec2(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def _instances(account: str, region: str) -> Iterator[Any]:
    for reservation in list(_ec2(account, region).reservations.values()):
        yield from reservation.instances


def _profile(instance: Any) -> Any:
    association = instance.ec2_backend.iam_instance_profile_associations.get(instance.id)
    return association.iam_instance_profile if association else None


def _platform_type(instance: Any) -> str:
    return "Windows" if (instance.platform or "").lower() == "windows" else "Linux"


def _registered(instance: Any) -> bool:
    """Has the agent on `instance` registered (whatever the instance's state now)?"""
    launch = _launches.get(instance.id)
    if launch is None or launch.never_registers or _profile(instance) is None:
        return False
    if faults.registration_blocked(instance):
        return False
    return time.monotonic() - launch.at >= clock.real_seconds(registration_delay())


def _online(instance: Any) -> bool:
    return instance._state.name == "running" and _registered(instance)


def _information(instance: Any) -> dict[str, Any]:
    platform = _platform_type(instance)
    profile = _profile(instance)
    ip = instance.private_ip or ""
    return {
        "InstanceId": instance.id,
        "PingStatus": "Online" if instance._state.name == "running" else "ConnectionLost",
        "LastPingDateTime": _now(),
        "AgentVersion": AGENT_VERSION,
        "IsLatestVersion": True,
        "PlatformType": platform,
        "PlatformName": "Microsoft Windows Server 2022 Datacenter" if platform == "Windows" else "Amazon Linux",
        "PlatformVersion": "10.0.20348" if platform == "Windows" else "2023",
        "IamRole": profile.roles[0].name if profile and profile.roles else "",
        "RegistrationDate": instance.launch_time,
        "ResourceType": "EC2Instance",
        "IPAddress": ip,
        "ComputerName": instance.id if platform == "Windows" else f"ip-{ip.replace('.', '-')}.ec2.internal",
        "SourceId": instance.id,
        "SourceType": "AWS::EC2::Instance",
    }


_FILTER_FIELDS = {
    "InstanceIds": "InstanceId",
    "PingStatus": "PingStatus",
    "PlatformTypes": "PlatformType",
    "ResourceType": "ResourceType",
    "AgentVersion": "AgentVersion",
    "IamRole": "IamRole",
}


def _filters(params: dict[str, Any]) -> list[tuple[str, list[str]]]:
    pairs = [(f["Key"], f.get("Values", [])) for f in params.get("Filters") or []]
    pairs += [(f["key"], f.get("valueSet", [])) for f in params.get("InstanceInformationFilterList") or []]
    for key, _ in pairs:
        if key not in _FILTER_FIELDS and not key.startswith("tag:"):
            raise _error("InvalidFilterKey", f"The specified key is not valid: {key}")
    return pairs


def _tags(instance: Any) -> dict[str, str]:
    return dict(instance.ec2_backend.tags.get(instance.id, {}))


def _matches(instance: Any, info: dict[str, Any], filters: list[tuple[str, list[str]]]) -> bool:
    tags = _tags(instance)
    for key, values in filters:
        value = tags.get(key[4:]) if key.startswith("tag:") else info[_FILTER_FIELDS[key]]
        if value not in values:
            return False
    return True


def _describe_instance_information(account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
    filters = _filters(params)
    items = []
    for instance in _instances(account, region):
        if instance._state.name != "terminated" and _registered(instance):
            info = _information(instance)
            if _matches(instance, info, filters):
                items.append(info)
    start = int(params.get("NextToken") or 0)
    size = int(params.get("MaxResults") or 50)
    result: dict[str, Any] = {"InstanceInformationList": items[start : start + size]}
    if start + size < len(items):
        result["NextToken"] = str(start + size)
    return result


def _launch_template_profile(backend: Any, kwargs: dict[str, Any]) -> dict[str, str]:
    if not kwargs.get("launch_template"):
        return {}
    data = backend._get_template_from_args(kwargs["launch_template"]).data
    return data.get("IamInstanceProfile") or {}


def _run_instances(original: Callable[..., Any]) -> Callable[..., Any]:
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
        with _lock:
            for instance in reservation.instances:
                _launches[instance.id] = _Launch(time.monotonic(), faults.take_unregistered_launch())
        return reservation

    run_instances._localcloud = True  # type: ignore[attr-defined]
    return run_instances


# ---------------------------------------------------------------------------------------------------------------------
# Commands: model
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class _Plugin:
    name: str
    status: str = "Pending"
    details: str = "Pending"
    response_code: int = -1
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    stdout: str = ""
    stderr: str = ""
    on_output: Callable[[_Plugin], None] | None = None  # uploads the output (CloudWatch) before the end shows

    def finish(self, status: str, code: int, stdout: str, stderr: str, details: str | None = None) -> None:
        """The step's end: its output is uploaded first, as the agent finishes uploading before it reports."""
        self.stdout, self.stderr = stdout, stderr
        try:
            if self.on_output is not None:
                self.on_output(self)
        finally:
            self.status, self.details, self.response_code = status, details or status, code
            self.finished = _now()


@dataclass
class _Invocation:
    instance_id: str
    plugins: list[_Plugin]
    status: str = "Pending"
    details: str = "Pending"
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


def _status_details(status: str) -> str:
    return {"InProgress": "InProgress", "TimedOut": "Execution Timed Out"}.get(status, status)


def _overall(statuses: list[str]) -> str:
    for status in ("Failed", "TimedOut", "Cancelled"):
        if status in statuses:
            return status
    return "Success"


def _document(backend: Any, name: str, version: str | None) -> Any:
    documents = backend._documents.get(name)
    if documents is None:
        raise _error("InvalidDocument", f"Document with name {name} does not exist.")
    if version in (None, "$DEFAULT"):
        return documents.get_default_version()
    if version == "$LATEST":
        return documents.get_latest_version()
    document = documents.find_by_version(version)
    if document is None:
        raise _error("InvalidDocumentVersion", f"Document {name} has no version {version}.")
    return document


def _parameter_values(document: Any, given: dict[str, list[str]]) -> dict[str, str]:
    """The document's parameters with defaults applied, checked like SendCommand checks them."""
    declared: dict[str, Any] = document.content_json.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise _error("InvalidParameters", f"Parameters {unknown} are not defined in the document.")
    values = {}
    for name, spec in declared.items():
        if name in given:
            value = ",".join(given[name]) if spec.get("type") == "StringList" else "".join(given[name][:1])
        elif "default" in spec:
            value = spec["default"] if isinstance(spec["default"], str) else json.dumps(spec["default"])
        else:
            raise _error("InvalidParameters", f"Parameters required: [{name}].")
        pattern = spec.get("allowedPattern")
        if pattern and name in given and not re.search(pattern, value):
            raise _error("InvalidParameters", f'Parameter "{name}" "{value}" failed to satisfy constraint: {pattern}')
        values[name] = value
    return values


def _command_instances(backend: Any, instance_ids: list[str], targets: list[dict[str, Any]]) -> list[str]:
    """The instances a SendCommand addresses; every one must be Online, as AWS requires."""
    by_id = {instance.id: instance for instance in _instances(backend.account_id, backend.region_name)}
    ids = list(dict.fromkeys(instance_ids))
    for target in targets:
        key, values = target["Key"], target.get("Values", [])
        if key == "InstanceIds":
            ids += values
        elif key.startswith("tag:"):
            ids += [i.id for i in by_id.values() if _tags(i).get(key[4:]) in values and _online(i)]
        else:
            raise _error("InvalidTarget", f"Target key {key} is not supported by the local cloud.")
    ids = list(dict.fromkeys(ids))
    for instance_id in ids:
        instance = by_id.get(instance_id)
        if instance is None or not _online(instance):
            raise _error("InvalidInstanceId", "Instances not in a valid state for account")
    return ids


def _send_command(self: Any, params: dict[str, Any]) -> Any:
    """SSM SendCommand (backend side): validate, record, and start the agent for each instance."""
    from moto.ssm.models import Command

    document = _document(self, params["DocumentName"], params.get("DocumentVersion"))
    values = _parameter_values(document, params.get("Parameters") or {})
    instance_ids = _command_instances(self, params.get("InstanceIds") or [], params.get("Targets") or [])
    if not instance_ids:
        raise _error("InvalidInstanceId", "Instances not in a valid state for account")
    command = Command(
        account_id=self.account_id,
        comment=params.get("Comment", ""),
        document_name=params["DocumentName"],
        timeout_seconds=params.get("TimeoutSeconds"),
        instance_ids=instance_ids,
        max_concurrency=params.get("MaxConcurrency", "50"),
        max_errors=params.get("MaxErrors", "0"),
        notification_config=params.get("NotificationConfig"),
        output_s3_bucket_name=params.get("OutputS3BucketName", ""),
        output_s3_key_prefix=params.get("OutputS3KeyPrefix", ""),
        output_s3_region=params.get("OutputS3Region", ""),
        parameters=params.get("Parameters") or {},
        service_role_arn=params.get("ServiceRoleArn", ""),
        targets=params.get("Targets") or [],
        backend_region=self.region_name,
    )
    steps = document.content_json.get("mainSteps") or []
    command.localcloud = _CommandState(
        document=document,
        values=values,
        cloudwatch=params.get("CloudWatchOutputConfig") or {},
        invocations={i: _Invocation(i, [_Plugin(step["name"]) for step in steps]) for i in instance_ids},
    )
    command.status = command.status_details = "Pending"
    command.completed_count = command.error_count = 0
    command.invocations = []
    self._commands.append(command)
    for instance_id in instance_ids:
        _emit_invocation(self, command, instance_id, "Pending")
        thread = threading.Thread(target=_agent, args=(self, command, instance_id), daemon=True)
        thread.start()
    return command


@dataclass
class _CommandState:
    document: Any
    values: dict[str, str]
    cloudwatch: dict[str, Any]
    invocations: dict[str, _Invocation]


def _emit_invocation(backend: Any, command: Any, instance_id: str, status: str) -> None:
    detail = {
        "command-id": command.command_id,
        "document-name": command.document_name,
        "instance-id": instance_id,
        "requested-date-time": _iso(command.requested_date_time.replace(tzinfo=dt.UTC)),
        "status": status,
    }
    arn = f"arn:aws:ec2:{backend.region_name}:{backend.account_id}:instance/{instance_id}"
    _emit("EC2 Command Invocation Status-change Notification", detail, backend.account_id, backend.region_name, [arn])


def _set_invocation(backend: Any, command: Any, invocation: _Invocation, status: str) -> None:
    """Move an invocation (and the command's aggregate) to `status`, and announce it."""
    with _lock:
        if invocation.status == status or invocation.status in FINISHED:
            return
        invocation.status, invocation.details = status, _status_details(status)
        if status == "InProgress":
            invocation.started = _now()
        if status in FINISHED:
            invocation.finished = _now()
        _update_command(command)
    _emit_invocation(backend, command, invocation.instance_id, status)


def _update_command(command: Any) -> None:
    invocations = list(command.localcloud.invocations.values())
    done = [i for i in invocations if i.status in FINISHED]
    command.completed_count = len(done)
    command.error_count = sum(i.status in ("Failed", "TimedOut") for i in done)
    if len(done) == len(invocations):
        command.status = _overall([i.status for i in invocations])
    elif any(i.status != "Pending" for i in invocations):
        command.status = "InProgress"
    command.status_details = _status_details(command.status)


# ---------------------------------------------------------------------------------------------------------------------
# Commands: the agent
# ---------------------------------------------------------------------------------------------------------------------


def _agent(backend: Any, command: Any, instance_id: str) -> None:
    state: _CommandState = command.localcloud
    invocation = state.invocations[instance_id]
    if invocation.cancelled.is_set():
        return
    _set_invocation(backend, command, invocation, "InProgress")
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
        _set_invocation(backend, command, invocation, _overall([p.status for p in invocation.plugins]))


def _run_steps(backend: Any, command: Any, invocation: _Invocation) -> None:
    instance = _ec2(backend.account_id, backend.region_name).get_instance(invocation.instance_id)
    steps = command.localcloud.document.content_json.get("mainSteps") or []
    for step, plugin in zip(steps, invocation.plugins, strict=True):
        plugin.on_output = lambda done: _write_cloudwatch(backend, command, invocation.instance_id, done)
        _run_step(backend, command, instance, step, plugin, invocation)


def _precondition(step: dict[str, Any], instance: Any) -> tuple[bool, str]:
    condition = step.get("precondition")
    if not condition:
        return True, ""
    (operator, (left, right)), *_ = condition.items()
    operands = {"platformType": _platform_type(instance)}
    satisfied = operator == "StringEquals" and operands.get(left, left) == operands.get(right, right)
    return satisfied, f'"{operator}": [{left}, {right}]'


def _run_step(backend: Any, command: Any, instance: Any, step: dict, plugin: _Plugin, inv: _Invocation) -> None:
    plugin.started = _now()
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


def _run_shell(backend: Any, command: Any, instance: Any, step: dict, plugin: _Plugin, inv: _Invocation) -> None:
    state: _CommandState = command.localcloud
    declared = state.document.content_json.get("parameters") or {}
    env_params = {name for name, spec in declared.items() if spec.get("interpolationType") == "ENV_VAR"}
    inputs = _interpolate(step.get("inputs") or {}, state.values, env_params)
    lines = inputs.get("runCommand") or []
    root = _instance_dir(instance.id)
    work = root / "orchestration" / command.command_id / plugin.name
    work.mkdir(parents=True, exist_ok=True)
    (work / "_script.sh").write_text("\n".join(lines if isinstance(lines, list) else [lines]) + "\n")
    timeout = int(inputs.get("timeoutSeconds") or DEFAULT_STEP_TIMEOUT)
    with open(work / "stdout", "wb") as out, open(work / "stderr", "wb") as err:
        process = subprocess.Popen(
            ["sh", "_script.sh"],
            cwd=work,
            env=_step_env(backend, instance.id, root, state.values, env_params),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        with _lock:
            _processes[(command.command_id, instance.id)] = process
        ending = _watch(process, instance, inv, clock.real_seconds(timeout))
        with _lock:
            _processes.pop((command.command_id, instance.id), None)
    # Bytes as written (read_text would turn carriage returns into newlines).
    stdout = (work / "stdout").read_bytes().decode(errors="replace")
    stderr = (work / "stderr").read_bytes().decode(errors="replace")
    _finish_shell(plugin, ending, process.returncode, stdout, stderr)


def _watch(process: subprocess.Popen[bytes], instance: Any, inv: _Invocation, limit: float) -> str:
    """Wait for the step: 'exited', or why it was stopped: 'timeout', 'cancelled', 'terminated'."""
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
        elif instance._state.name != "running":
            reason = "terminated"
        else:
            continue
        _kill(process)
        return reason


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _finish_shell(plugin: _Plugin, ending: str, code: int, stdout: str, stderr: str) -> None:
    if ending == "timeout":
        plugin.finish("TimedOut", STOPPED_EXIT_CODE, stdout, stderr, "Execution Timed Out")
    elif ending == "cancelled":
        plugin.finish("Cancelled", STOPPED_EXIT_CODE, stdout, stderr)
    elif ending == "terminated":
        note = "the instance stopped or terminated while the command ran"
        plugin.finish("Failed", -1, stdout, f"{stderr}{note}\n")
    elif code == 0:
        plugin.finish("Success", 0, stdout, stderr)
    else:
        plugin.finish("Failed", code, stdout, f"{stderr}failed to run commands: exit status {code}\n")


def _write_cloudwatch(backend: Any, command: Any, instance_id: str, plugin: _Plugin) -> None:
    """Full step output to CloudWatch Logs, as the agent does with SendCommand's CloudWatchOutputConfig: streams
    `<command id>/<instance id>/<step name>/stdout` and `/stderr`, created only for output there is."""
    from moto.logs.models import logs_backends

    config = command.localcloud.cloudwatch
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


# ---------------------------------------------------------------------------------------------------------------------
# Commands: reading and cancelling
# ---------------------------------------------------------------------------------------------------------------------


def _elapsed(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None:
        return ""
    return f"PT{((end or _now()) - start).total_seconds():.3f}S"


def _plugin_view(command: Any, invocation: _Invocation, plugin: _Plugin) -> dict[str, Any]:
    finished = plugin.status in FINISHED
    return {
        "CommandId": command.command_id,
        "InstanceId": invocation.instance_id,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.localcloud.document.document_version,
        "PluginName": plugin.name,
        "ResponseCode": plugin.response_code,
        "ExecutionStartDateTime": _iso(plugin.started) if plugin.started else "",
        "ExecutionElapsedTime": _elapsed(plugin.started, plugin.finished),
        "ExecutionEndDateTime": _iso(plugin.finished) if plugin.finished else "",
        "Status": plugin.status,
        "StatusDetails": plugin.details,
        "StandardOutputContent": agent_cut(plugin.stdout, MAX_STDOUT) if finished else "",
        "StandardOutputUrl": "",
        # The agent cuts stderr at the stdout limit too (runpluginutil.go); the service returns its first 8,000.
        "StandardErrorContent": agent_cut(plugin.stderr, MAX_STDOUT)[:MAX_STDERR] if finished else "",
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": _cloudwatch_view(command),
    }


def _cloudwatch_view(command: Any) -> dict[str, Any]:
    config = command.localcloud.cloudwatch
    return {
        "CloudWatchLogGroupName": config.get("CloudWatchLogGroupName", ""),
        "CloudWatchOutputEnabled": bool(config.get("CloudWatchOutputEnabled")),
    }


def _localcloud_command(backend: Any, command_id: str) -> Any:
    command = next((c for c in backend._commands if c.command_id == command_id), None)
    if command is None or not hasattr(command, "localcloud"):
        raise _error("InvalidCommandId", "Invalid command id.")
    return command


def _get_command_invocation(backend: Any, command_id: str, instance_id: str, plugin_name: str | None) -> dict:
    command = _localcloud_command(backend, command_id)
    invocation = command.localcloud.invocations.get(instance_id)
    if invocation is None:
        raise _error("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)")
    with _lock:
        if plugin_name is None:
            if len(invocation.plugins) != 1:
                raise _error("InvalidPluginName", "The document has more than one step: specify PluginName.")
            plugin = invocation.plugins[0]
        else:
            plugin = next((p for p in invocation.plugins if p.name == plugin_name), None)
            if plugin is None:
                raise _error("InvalidPluginName", f"Plugin {plugin_name} is not in the document.")
        view = _plugin_view(command, invocation, plugin)
        if plugin_name is None:
            view.update(Status=invocation.status, StatusDetails=invocation.details)
        return view


def _invocation_view(command: Any, invocation: _Invocation, details: bool) -> dict[str, Any]:
    view = {
        "CommandId": command.command_id,
        "InstanceId": invocation.instance_id,
        "InstanceName": "",
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.localcloud.document.document_version,
        "RequestedDateTime": command.requested_date_time,
        "Status": invocation.status,
        "StatusDetails": invocation.details,
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
        "ServiceRole": command.service_role_arn,
        "NotificationConfig": command.notification_config,
        "CloudWatchOutputConfig": _cloudwatch_view(command),
    }
    if details:
        view["CommandPlugins"] = [
            {
                "Name": p.name,
                "Status": p.status,
                "StatusDetails": p.details,
                "ResponseCode": p.response_code,
                "ResponseStartDateTime": p.started,
                "ResponseFinishDateTime": p.finished,
                "Output": p.stdout[:2500] if p.status in FINISHED else "",
            }
            for p in invocation.plugins
        ]
    return view


def _list_command_invocations(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    command_id, instance_id = params.get("CommandId"), params.get("InstanceId")
    commands = [_localcloud_command(backend, command_id)] if command_id else backend._commands
    with _lock:
        views = [
            _invocation_view(command, invocation, bool(params.get("Details")))
            for command in commands
            if hasattr(command, "localcloud")
            for invocation in command.localcloud.invocations.values()
            if instance_id in (None, invocation.instance_id)
        ]
    return {"CommandInvocations": views}


def _cancel_command(backend: Any, command_id: str, instance_ids: list[str]) -> None:
    command = _localcloud_command(backend, command_id)
    for invocation in command.localcloud.invocations.values():
        if instance_ids and invocation.instance_id not in instance_ids:
            continue
        invocation.cancelled.set()
        if invocation.status == "Pending" or _never_started(command, invocation):
            for plugin in invocation.plugins:
                if plugin.status not in FINISHED:
                    plugin.finish("Cancelled", -1, "", "")
            _set_invocation(backend, command, invocation, "Cancelled")


def _never_started(command: Any, invocation: _Invocation) -> bool:
    """An InProgress invocation with no running step (a hung agent): cancelling it must end it here."""
    with _lock:
        running = (command.command_id, invocation.instance_id) in _processes
    return invocation.status == "InProgress" and not running and all(p.status == "Pending" for p in invocation.plugins)


# ---------------------------------------------------------------------------------------------------------------------
# Wiring into moto
# ---------------------------------------------------------------------------------------------------------------------


def _targets_or_nothing(self: Any) -> list[str]:
    """moto's Command: with no Targets it addressed every instance; address none (InstanceIds are added anyway)."""
    from moto.ssm.models import ec2_backends

    if not self.targets:
        return []
    ec2 = ec2_backends[self.account_id][self.backend_region]
    filters = {t["Key"]: t["Values"] for t in self.targets if t["Key"] != "InstanceIds"}
    ids = [i for t in self.targets if t["Key"] == "InstanceIds" for i in t["Values"]]
    if filters:
        ids += [instance.id for r in ec2.all_reservations(filters=filters) for instance in r.instances]
    return ids


def _responses() -> dict[str, Callable[[Any], Any]]:
    from moto.core.responses import ActionResult, EmptyResult

    def send_command(self: Any) -> Any:
        command = _send_command(self.ssm_backend, json.loads(self.body or "{}"))
        return ActionResult({"Command": command.response_object()})

    def describe_instance_information(self: Any) -> Any:
        return ActionResult(
            _describe_instance_information(self.current_account, self.region, json.loads(self.body or "{}"))
        )

    def get_command_invocation(self: Any) -> Any:
        args = (self._get_param("CommandId"), self._get_param("InstanceId"), self._get_param("PluginName"))
        return ActionResult(_get_command_invocation(self.ssm_backend, *args))

    def list_command_invocations(self: Any) -> Any:
        return ActionResult(_list_command_invocations(self.ssm_backend, json.loads(self.body or "{}")))

    def cancel_command(self: Any) -> Any:
        _cancel_command(self.ssm_backend, self._get_param("CommandId"), self._get_param("InstanceIds") or [])
        return EmptyResult()

    return {
        "send_command": send_command,
        "describe_instance_information": describe_instance_information,
        "get_command_invocation": get_command_invocation,
        "list_command_invocations": list_command_invocations,
        "cancel_command": cancel_command,
    }


def reset() -> None:
    """Stop every running step and forget launches (moto's own reset forgets commands)."""
    with _lock:
        processes = list(_processes.values())
        _processes.clear()
        _launches.clear()
    for process in processes:
        _kill(process)


def install() -> None:
    from moto.ec2.models import EC2Backend
    from moto.ssm.models import Command
    from moto.ssm.responses import SimpleSystemManagerResponse

    if not getattr(EC2Backend.run_instances, "_localcloud", False):
        EC2Backend.run_instances = _run_instances(EC2Backend.run_instances)  # type: ignore[method-assign]
    Command._get_instance_ids_from_targets = _targets_or_nothing  # type: ignore[method-assign]
    for name, method in _responses().items():
        setattr(SimpleSystemManagerResponse, name, method)
