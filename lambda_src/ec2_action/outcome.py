"""The end of a build command: read it from Systems Manager and hand it to the waiting RunBuildCommand task.

Used by command_event (SSM's status-change event) and by the poller's sweep (the fallback for a lost event).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from . import aws, jobs, log
from .config import load

TERMINAL = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
TAIL_CHARS = 4000
DEAD_TOKEN_ERRORS = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


def read(command_id: str, instance_id: str, plugin_name: str) -> dict[str, Any] | None:
    """The task output of a finished command (DESIGN.md, command_event), or None while it still runs."""
    invocation = aws.client("ssm").get_command_invocation(
        CommandId=command_id, InstanceId=instance_id, PluginName=plugin_name
    )
    if invocation["Status"] not in TERMINAL:
        return None
    return {
        "command_id": command_id,
        "instance_id": instance_id,
        "status": invocation["Status"],
        "status_details": invocation.get("StatusDetails", ""),
        "response_code": invocation.get("ResponseCode", -1),
        "stdout_tail": invocation.get("StandardOutputContent", "")[-TAIL_CHARS:],
        "stderr_tail": invocation.get("StandardErrorContent", "")[-TAIL_CHARS:],
        "log_group": load().build_log_group,
        "log_stream_prefix": f"{command_id}/{instance_id}/{plugin_name}",
    }


def deliver(item: dict[str, Any], command_id: str) -> bool:
    """If the item's command has ended, complete its task token; True when the execution received the outcome."""
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
    jobs.clear_task_token(item["job_id"], token)
    if delivered:
        log.info(
            "command outcome delivered",
            command_id=command_id,
            status=output["status"],
            response_code=output["response_code"],
        )
    return delivered
