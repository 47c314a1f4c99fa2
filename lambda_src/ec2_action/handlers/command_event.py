"""command_event: SSM's "EC2 Command Invocation Status-change Notification" ends the RunBuildCommand task."""

from __future__ import annotations

from typing import Any

from .. import aws, jobs, log, outcome
from ..config import load


def handler(event: dict[str, Any], context: Any) -> dict[str, bool]:
    detail = event.get("detail") or {}
    command_id, instance_id, status = detail.get("command-id", ""), detail.get("instance-id", ""), detail.get("status")
    log.start(context, command_id=command_id, instance_id=instance_id, status=status)
    if status not in outcome.TERMINAL:
        return {"delivered": False}
    commands = aws.client("ssm").list_commands(CommandId=command_id)["Commands"]
    if not commands or commands[0].get("DocumentName") != load().document_name or not commands[0].get("Comment"):
        log.info("not a build command of this module; ignored")
        return {"delivered": False}
    item = jobs.get(commands[0]["Comment"])
    if item is None or not item.get("task_token") or item.get("instance_id") != instance_id:
        log.info("no build awaits this command; ignored")
        return {"delivered": False}
    log.bind(job_id=item["job_id"], execution_arn=item.get("execution_arn"))
    if not outcome.is_current(commands[0], item):
        log.info("an older command of this build (a retried attempt sent another); ignored")
        return {"delivered": False}
    return {"delivered": outcome.deliver(item, command_id)}
