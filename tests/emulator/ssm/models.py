"""Systems Manager's API layer in the emulator (backend side): DescribeInstanceInformation from the agents'
registrations, SendCommand (only Online instances, parameters checked against the document; the agent runs it),
GetCommandInvocation, ListCommandInvocations and CancelCommand from the command records."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from emulator.ssm import agent
from emulator.ssm.commands import FINISHED, AgentCommand, CommandState, Invocation, Plugin, iso, lock, now
from emulator.ssm.exceptions import error


def _information(instance: Any) -> dict[str, Any]:
    platform = agent.platform_type(instance)
    profile = agent.profile(instance)
    ip = instance.private_ip or ""
    return {
        "InstanceId": instance.id,
        "PingStatus": "Online" if agent.online(instance) else "ConnectionLost",
        "LastPingDateTime": now(),
        "AgentVersion": agent.AGENT_VERSION,
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
            raise error("InvalidFilterKey", f"The specified key is not valid: {key}")
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


def describe_instance_information(account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
    filters = _filters(params)
    items = []
    for instance in agent.instances(account, region):
        if instance._state.name != "terminated" and agent.registered(instance):
            info = _information(instance)
            if _matches(instance, info, filters):
                items.append(info)
    start = int(params.get("NextToken") or 0)
    size = int(params.get("MaxResults") or 50)
    result: dict[str, Any] = {"InstanceInformationList": items[start : start + size]}
    if start + size < len(items):
        result["NextToken"] = str(start + size)
    return result


def _document(backend: Any, name: str, version: str | None) -> Any:
    documents = backend._documents.get(name)
    if documents is None:
        raise error("InvalidDocument", f"Document with name {name} does not exist.")
    if version in (None, "$DEFAULT"):
        return documents.get_default_version()
    if version == "$LATEST":
        return documents.get_latest_version()
    document = documents.find_by_version(version)
    if document is None:
        raise error("InvalidDocumentVersion", f"Document {name} has no version {version}.")
    return document


def _parameter_values(document: Any, given: dict[str, list[str]]) -> dict[str, str]:
    """The document's parameters with defaults applied, checked like SendCommand checks them."""
    declared: dict[str, Any] = document.content_json.get("parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise error("InvalidParameters", f"Parameters {unknown} are not defined in the document.")
    values = {}
    for name, spec in declared.items():
        if name in given:
            value = ",".join(given[name]) if spec.get("type") == "StringList" else "".join(given[name][:1])
        elif "default" in spec:
            value = spec["default"] if isinstance(spec["default"], str) else json.dumps(spec["default"])
        else:
            raise error("InvalidParameters", f"Parameters required: [{name}].")
        pattern = spec.get("allowedPattern")
        if pattern and name in given and not re.search(pattern, value):
            raise error("InvalidParameters", f'Parameter "{name}" "{value}" failed to satisfy constraint: {pattern}')
        values[name] = value
    return values


def _command_instances(backend: Any, instance_ids: list[str], targets: list[dict[str, Any]]) -> list[str]:
    """The instances a SendCommand addresses; every one must be Online, as AWS requires."""
    by_id = {instance.id: instance for instance in agent.instances(backend.account_id, backend.region_name)}
    ids = list(dict.fromkeys(instance_ids))
    for target in targets:
        key, values = target["Key"], target.get("Values", [])
        if key == "InstanceIds":
            ids += values
        elif key.startswith("tag:"):
            ids += [i.id for i in by_id.values() if _tags(i).get(key[4:]) in values and agent.online(i)]
        else:
            raise error("InvalidTarget", f"Target key {key} is not supported by the local cloud.")
    ids = list(dict.fromkeys(ids))
    for instance_id in ids:
        instance = by_id.get(instance_id)
        if instance is None or not agent.online(instance):
            raise error("InvalidInstanceId", "Instances not in a valid state for account")
    return ids


def send_command(self: Any, params: dict[str, Any]) -> Any:
    """SSM SendCommand (backend side): validate, record, and start the agent for each instance."""
    document = _document(self, params["DocumentName"], params.get("DocumentVersion"))
    values = _parameter_values(document, params.get("Parameters") or {})
    instance_ids = _command_instances(self, params.get("InstanceIds") or [], params.get("Targets") or [])
    if not instance_ids:
        raise error("InvalidInstanceId", "Instances not in a valid state for account")
    command = AgentCommand(
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
    command.run_state = CommandState(
        document=document,
        values=values,
        cloudwatch=params.get("CloudWatchOutputConfig") or {},
        invocations={i: Invocation(i, [Plugin(step["name"]) for step in steps]) for i in instance_ids},
    )
    command.status = command.status_details = "Pending"
    command.completed_count = command.error_count = 0
    command.invocations = []
    self._commands.append(command)
    for instance_id in instance_ids:
        agent.emit_invocation(self, command, instance_id, "Pending")
        agent.start(self, command, instance_id)
    return command


def _elapsed(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None:
        return ""
    return f"PT{((end or now()) - start).total_seconds():.3f}S"


def _plugin_view(command: Any, invocation: Invocation, plugin: Plugin) -> dict[str, Any]:
    finished = plugin.status in FINISHED
    return {
        "CommandId": command.command_id,
        "InstanceId": invocation.instance_id,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.run_state.document.document_version,
        "PluginName": plugin.name,
        "ResponseCode": plugin.response_code,
        "ExecutionStartDateTime": iso(plugin.started) if plugin.started else "",
        "ExecutionElapsedTime": _elapsed(plugin.started, plugin.finished),
        "ExecutionEndDateTime": iso(plugin.finished) if plugin.finished else "",
        "Status": plugin.status,
        "StatusDetails": plugin.details,
        "StandardOutputContent": agent.agent_cut(plugin.stdout, agent.MAX_STDOUT) if finished else "",
        "StandardOutputUrl": "",
        # The agent cuts stderr at the stdout limit too (runpluginutil.go); the service returns its first 8,000.
        "StandardErrorContent": agent.agent_cut(plugin.stderr, agent.MAX_STDOUT)[: agent.MAX_STDERR]
        if finished
        else "",
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": _cloudwatch_view(command),
    }


def _cloudwatch_view(command: Any) -> dict[str, Any]:
    config = command.run_state.cloudwatch
    return {
        "CloudWatchLogGroupName": config.get("CloudWatchLogGroupName", ""),
        "CloudWatchOutputEnabled": bool(config.get("CloudWatchOutputEnabled")),
    }


def _command(backend: Any, command_id: str) -> Any:
    command = next((c for c in backend._commands if c.command_id == command_id), None)
    if command is None or not isinstance(command, AgentCommand):
        raise error("InvalidCommandId", "Invalid command id.")
    return command


def get_command_invocation(backend: Any, command_id: str, instance_id: str, plugin_name: str | None) -> dict:
    command = _command(backend, command_id)
    invocation = command.run_state.invocations.get(instance_id)
    if invocation is None:
        raise error("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist)")
    with lock:
        if plugin_name is None:
            if len(invocation.plugins) != 1:
                raise error("InvalidPluginName", "The document has more than one step: specify PluginName.")
            plugin = invocation.plugins[0]
        else:
            plugin = next((p for p in invocation.plugins if p.name == plugin_name), None)
            if plugin is None:
                raise error("InvalidPluginName", f"Plugin {plugin_name} is not in the document.")
        view = _plugin_view(command, invocation, plugin)
        if plugin_name is None:
            view.update(Status=invocation.status, StatusDetails=invocation.details)
        return view


def _invocation_view(command: Any, invocation: Invocation, details: bool) -> dict[str, Any]:
    view = {
        "CommandId": command.command_id,
        "InstanceId": invocation.instance_id,
        "InstanceName": "",
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.run_state.document.document_version,
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


COMMAND_FILTER_KEYS = ("InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName")
COMMAND_STATUSES = ("Pending", "InProgress", "Success", "Cancelled", "Failed", "TimedOut", "Cancelling")
EXECUTION_STAGES = {"Executing": False, "Complete": True}


def _requested(command: Any) -> dt.datetime:
    return command.requested_date_time.replace(tzinfo=dt.UTC)


def _filter_time(key: str, value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise error("InvalidFilterValue", f"The value {value} of filter key {key} is not a valid date.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _command_matches(command: Any, key: str, value: str) -> bool:
    if key == "InvokedAfter":
        return _requested(command) >= _filter_time(key, value)
    if key == "InvokedBefore":
        return _requested(command) <= _filter_time(key, value)
    if key == "Status":
        if value not in COMMAND_STATUSES:
            raise error("InvalidFilterValue", f"{value} is not a valid value for filter key Status.")
        return bool(command.status == value)
    if key == "ExecutionStage":
        if value not in EXECUTION_STAGES:
            raise error("InvalidFilterValue", f"{value} is not a valid value for filter key ExecutionStage.")
        return (command.status in FINISHED) == EXECUTION_STAGES[value]
    return bool(command.document_name == value)


def list_commands(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    """ListCommands with its Filters (every filter must match), MaxResults (1-50, default 50) and NextToken."""
    command_id, instance_id = params.get("CommandId"), params.get("InstanceId")
    filters = params.get("Filters") or []
    for item in filters:
        if item.get("key") not in COMMAND_FILTER_KEYS:
            raise error("InvalidFilterKey", f"{item.get('key')} is not a valid filter key for ListCommands.")
    size = int(params.get("MaxResults") or 50)
    if not 1 <= size <= 50:
        raise error("ValidationException", f"MaxResults {size} is outside the range 1-50.")
    if command_id:
        commands = [_command(backend, command_id)]
    else:
        commands = [c for c in backend._commands if instance_id in (None, *c.instance_ids)]
    with lock:
        found = [c for c in commands if all(_command_matches(c, f["key"], f["value"]) for f in filters)]
        start = int(params.get("NextToken") or 0)
        result: dict[str, Any] = {"Commands": [c.response_object() for c in found[start : start + size]]}
    if start + size < len(found):
        result["NextToken"] = str(start + size)
    return result


def list_command_invocations(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    command_id, instance_id = params.get("CommandId"), params.get("InstanceId")
    commands = [_command(backend, command_id)] if command_id else backend._commands
    with lock:
        views = [
            _invocation_view(command, invocation, bool(params.get("Details")))
            for command in commands
            if isinstance(command, AgentCommand)
            for invocation in command.run_state.invocations.values()
            if instance_id in (None, invocation.instance_id)
        ]
    return {"CommandInvocations": views}


def cancel_command(backend: Any, command_id: str, instance_ids: list[str]) -> None:
    command = _command(backend, command_id)
    for invocation in command.run_state.invocations.values():
        if instance_ids and invocation.instance_id not in instance_ids:
            continue
        invocation.cancelled.set()
        if invocation.status == "Pending" or _never_started(command, invocation):
            for plugin in invocation.plugins:
                if plugin.status not in FINISHED:
                    plugin.finish("Cancelled", -1, "", "")
            agent.set_invocation(backend, command, invocation, "Cancelled")


def _never_started(command: Any, invocation: Invocation) -> bool:
    """An InProgress invocation with no running step (a hung agent): cancelling it must end it here."""
    running = agent.running(command.command_id, invocation.instance_id)
    return invocation.status == "InProgress" and not running and all(p.status == "Pending" for p in invocation.plugins)
