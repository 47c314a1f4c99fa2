"""Wire format of EC2's StopInstances and StartInstances in the emulator (methods of moto's ``InstanceResponse``,
installed by ``emulator.patches``): the Hibernate parameter, and each instance's real previous and current state."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult

from emulator.ec2 import instances
from emulator.ec2.exceptions import ServerError


def stop_instances(self: Any) -> Any:
    instance_ids = self._get_param("InstanceIds", [])
    hibernate = self._get_bool_param("Hibernate", False)
    self.error_on_dryrun()
    changes = instances.stop_instances(self.ec2_backend, instance_ids, hibernate)
    return ActionResult({"StoppingInstances": [change.view() for change in changes]})


def start_instances(self: Any) -> Any:
    instance_ids = self._get_param("InstanceIds", [])
    self.error_on_dryrun()
    changes = instances.start_instances(self.ec2_backend, instance_ids)
    if isinstance(changes, ServerError):
        return changes.answer(self)
    return ActionResult({"StartingInstances": [change.view() for change in changes]})
