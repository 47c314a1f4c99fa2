"""The Lambda configuration: one JSON environment variable, EC2_ACTION_CONFIG (DESIGN.md, "Lambda configuration")."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .payloads import ActionTypeId

ENV_VAR = "EC2_ACTION_CONFIG"


@dataclass(frozen=True)
class ActionType:
    """One served action type: a version of an action. The versions of an action share its defaults."""

    category: str
    owner: str
    provider: str
    version: str
    defaults: dict[str, Any]

    @property
    def type_id(self) -> ActionTypeId:
        """The actionTypeId as CodePipeline's API spells it."""
        return {"category": self.category, "owner": self.owner, "provider": self.provider, "version": self.version}


@dataclass(frozen=True)
class Config:
    stack: str
    actions: tuple[ActionType, ...]  # every served version of every action, each polled on its own
    state_machine_arn: str
    jobs_table: str
    document_name: str
    build_log_group: str
    launch_template_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    allowed_image_ids: tuple[str, ...]
    allowed_image_owners: tuple[str, ...]
    allowed_instance_types: tuple[str, ...]
    default_timeout_minutes: int
    max_timeout_minutes: int
    ssm_registration_timeout_seconds: int
    poll_function_name: str
    orphan_grace_seconds: int
    tracing: bool  # X-Ray: the functions load the SDK and trace their AWS calls only then

    @property
    def partition(self) -> str:
        """The AWS partition (aws, aws-cn, aws-us-gov) the module runs in, read from its state machine's ARN."""
        return self.state_machine_arn.split(":")[1]

    def action(self, type_id: Mapping[str, object]) -> ActionType | None:
        """The served action type matching a job's actionTypeId (or an event's `type`), of any served version."""
        wanted = {key: str(type_id.get(key, "")) for key in ("category", "owner", "provider", "version")}
        return next((action for action in self.actions if action.type_id == wanted), None)


def parse(text: str) -> Config:
    """Parse the JSON text of EC2_ACTION_CONFIG; a missing key raises KeyError naming it."""
    raw = json.loads(text)
    actions = tuple(
        ActionType(
            category=a["category"],
            owner=a["owner"],
            provider=a["provider"],
            version=str(version),
            defaults={k: v for k, v in (a.get("defaults") or {}).items() if v is not None},
        )
        for a in raw["actions"]
        for version in a["versions"]
    )
    return Config(
        stack=raw["stack"],
        actions=actions,
        state_machine_arn=raw["state_machine_arn"],
        jobs_table=raw["jobs_table"],
        document_name=raw["document_name"],
        build_log_group=raw["build_log_group"],
        launch_template_id=raw["launch_template_id"],
        subnet_ids=tuple(raw["subnet_ids"]),
        security_group_ids=tuple(raw["security_group_ids"]),
        allowed_image_ids=tuple(raw.get("allowed_image_ids") or ()),
        allowed_image_owners=tuple(raw.get("allowed_image_owners") or ()),
        allowed_instance_types=tuple(raw.get("allowed_instance_types") or ()),
        default_timeout_minutes=int(raw["default_timeout_minutes"]),
        max_timeout_minutes=int(raw["max_timeout_minutes"]),
        ssm_registration_timeout_seconds=int(raw["ssm_registration_timeout_seconds"]),
        poll_function_name=raw["poll_function_name"],
        orphan_grace_seconds=int(raw["orphan_grace_seconds"]),
        tracing=bool(raw.get("tracing", False)),
    )


@functools.cache
def load() -> Config:
    """The configuration of this container, parsed once."""
    return parse(os.environ[ENV_VAR])
