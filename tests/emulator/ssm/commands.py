"""Run Command's records in the emulator: a command's invocations (one per instance) and their steps (plugins),
with the statuses Systems Manager reports. The API layer (``models``) creates them, the agent (``agent``) advances
them."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.ssm.models import Command, ec2_backends

FINISHED = {"Success", "Failed", "TimedOut", "Cancelled"}
lock = threading.RLock()  # guards the records, the agent's launches and its running steps


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Plugin:
    name: str
    status: str = "Pending"
    details: str = "Pending"
    response_code: int = -1
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    stdout: str = ""
    stderr: str = ""
    on_output: Callable[[Plugin], None] | None = None  # uploads the output (CloudWatch) before the end shows

    def finish(self, status: str, code: int, stdout: str, stderr: str, details: str | None = None) -> None:
        """The step's end: its output is uploaded first, as the agent finishes uploading before it reports."""
        self.stdout, self.stderr = stdout, stderr
        try:
            if self.on_output is not None:
                self.on_output(self)
        finally:
            self.status, self.details, self.response_code = status, details or status, code
            self.finished = now()


@dataclass
class Invocation:
    instance_id: str
    plugins: list[Plugin]
    status: str = "Pending"
    details: str = "Pending"
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    lost: bool = False  # its agent died with its instance while the command ran: the agent reports nothing more


@dataclass
class CommandState:
    document: Any
    values: dict[str, str]
    cloudwatch: dict[str, Any]
    invocations: dict[str, Invocation]


def status_details(status: str) -> str:
    return {"InProgress": "InProgress", "TimedOut": "Execution Timed Out"}.get(status, status)


def overall(statuses: list[str]) -> str:
    for status in ("Failed", "TimedOut", "Cancelled"):
        if status in statuses:
            return status
    return "Success"


def update_command(command: Any) -> None:
    invocations = list(command.run_state.invocations.values())
    done = [i for i in invocations if i.status in FINISHED]
    command.completed_count = len(done)
    command.error_count = sum(i.status in ("Failed", "TimedOut") for i in done)
    if len(done) == len(invocations):
        command.status = overall([i.status for i in invocations])
    elif any(i.status != "Pending" for i in invocations):
        command.status = "InProgress"
    command.status_details = status_details(command.status)


class AgentCommand(Command):
    """A command the emulated agent runs; ``run_state`` holds its document, parameter values and invocations.

    moto's Command resolves an empty Targets list to every instance of the account (its private
    ``_get_instance_ids_from_targets``, called by its constructor); SendCommand with InstanceIds only addresses those
    instances (the constructor adds InstanceIds itself)."""

    run_state: CommandState

    def _get_instance_ids_from_targets(self) -> list[str]:
        """The instances the Targets name (none without Targets)."""
        if not self.targets:
            return []
        ec2 = ec2_backends[self.account_id][self.backend_region]
        filters = {t["Key"]: t["Values"] for t in self.targets if t["Key"] != "InstanceIds"}
        ids = [i for t in self.targets if t["Key"] == "InstanceIds" for i in t["Values"]]
        if filters:
            ids += [instance.id for r in ec2.all_reservations(filters=filters) for instance in r.instances]
        return ids
