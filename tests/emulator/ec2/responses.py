"""Wire format of EC2's StopInstances, StartInstances and TerminateInstances (methods of moto's ``InstanceResponse``,
installed by ``emulator.patches``): the Hibernate parameter, and each instance's real previous and current state; and
of CreateFleet of Type instant (wrapping moto's ``Fleets.create_fleet``)."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult

from emulator.ec2 import fleets, instances
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


def terminate_instances(self: Any) -> Any:
    """An instance terminated by this request is shutting-down, one terminated before stays terminated (moto answers
    shutting-down for both); Auto Scaling and ELBv2 hear of it as moto's own response tells them."""
    from moto.autoscaling import autoscaling_backends
    from moto.elbv2 import elbv2_backends

    instance_ids = self._get_param("InstanceIds", [])
    self.error_on_dryrun()
    terminated = self.ec2_backend.terminate_instances(instance_ids)
    autoscaling_backends[self.current_account][self.region].notify_terminate_instances(instance_ids)
    elbv2_backends[self.current_account][self.region].notify_terminate_instances(instance_ids)
    changes = [
        instances.Change(
            instance.id, previous.name, "terminated" if previous.name == "terminated" else "shutting-down"
        ).view()
        for instance, previous in terminated
    ]
    return ActionResult({"TerminatingInstances": changes})


FLEET_REQUEST = (
    "ClientToken",
    "LaunchTemplateConfigs",
    "TargetCapacitySpecification",
    "SpotOptions",
    "OnDemandOptions",
    "TagSpecifications",
    "Type",
)


def create_fleet(original: Any) -> Any:
    """CreateFleet: a fleet of Type instant launches here (``emulator.ec2.fleets``); maintain and request fleets stay
    moto's."""

    def create_fleet(self: Any) -> Any:
        if self._get_param("Type") != "instant":
            return original(self)
        request = {name: self._get_param(name) for name in FLEET_REQUEST if self._get_param(name) is not None}
        self.error_on_dryrun()
        return ActionResult(fleets.create_instant_fleet(self.ec2_backend, request))

    return create_fleet
