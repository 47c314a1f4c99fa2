"""Wire format of the Systems Manager operations the emulator serves (methods of moto's
``SimpleSystemManagerResponse``, installed by ``emulator.patches``)."""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from emulator.ssm import models


def send_command(self: Any) -> Any:
    command = models.send_command(self.ssm_backend, json.loads(self.body or "{}"))
    return ActionResult({"Command": command.response_object()})


def describe_instance_information(self: Any) -> Any:
    params = json.loads(self.body or "{}")
    return ActionResult(models.describe_instance_information(self.current_account, self.region, params))


def get_command_invocation(self: Any) -> Any:
    args = (self._get_param("CommandId"), self._get_param("InstanceId"), self._get_param("PluginName"))
    return ActionResult(models.get_command_invocation(self.ssm_backend, *args))


def list_command_invocations(self: Any) -> Any:
    return ActionResult(models.list_command_invocations(self.ssm_backend, json.loads(self.body or "{}")))


def list_commands(self: Any) -> Any:
    return ActionResult(models.list_commands(self.ssm_backend, json.loads(self.body or "{}")))


def cancel_command(self: Any) -> Any:
    models.cancel_command(self.ssm_backend, self._get_param("CommandId"), self._get_param("InstanceIds") or [])
    return EmptyResult()


OPERATIONS = (
    send_command,
    describe_instance_information,
    get_command_invocation,
    list_commands,
    list_command_invocations,
    cancel_command,
)
