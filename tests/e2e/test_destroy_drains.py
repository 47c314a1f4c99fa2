"""terraform destroy leaves no instance behind: a warm pool's ready instance is launched by the keeper, not by
Terraform, and the destroy ends it (the keeper's invocation, deleted first, drains the stack) before it removes the
functions, the registry and the roles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from emulator.server import LocalCloud
from harness.deployment import EXAMPLE, STACK_TAG, Deployment
from harness.matrix import DEPLOYMENT_VARIABLES
from harness.terraform import TerraformRoot

pytestmark = pytest.mark.e2e

PREFIX = "ec2-build-drained"
# Instances that run, or could run again.
NOT_ENDED = ["pending", "running", "stopping", "stopped"]


def stack_instances(deployment: Deployment, states: list[str]) -> dict[str, str]:
    """The stack's instances in these states, by id: their state."""
    filters = [
        {"Name": f"tag:{STACK_TAG}", "Values": [PREFIX]},
        {"Name": "instance-state-name", "Values": states},
    ]
    reservations = deployment.client("ec2").describe_instances(Filters=filters)["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def ready_members(deployment: Deployment) -> list[dict[str, Any]]:
    """The pool's member records in state ready (the registry table, read as the test, not as the system)."""
    items = deployment.client("dynamodb").scan(TableName=deployment.outputs["pool_table_name"])["Items"]
    return [item for item in items if item["id"]["S"].startswith("m-") and item["state"]["S"] == "ready"]


def test_destroy_terminates_a_warm_pools_ready_instance(local_cloud: LocalCloud, tmp_path: Path) -> None:
    variables = {
        **DEPLOYMENT_VARIABLES,
        "region": local_cloud.region,
        "name_prefix": PREFIX,
        "vpc_cidr_block": "10.44.0.0/16",
        # The example's action type is shared by name: this stack brings its own provider name.
        "action_provider": "EC2-Linux-Drained",
        "capacity_strategy": "warm",
        "pool_min_ready": 1,
    }
    root = TerraformRoot(EXAMPLE, tmp_path, env=local_cloud.env())
    root.init()
    root.apply(variables)
    deployment = Deployment(local_cloud, root, root.outputs(), variables)

    # The apply's keeper pass launched the pool's instance; a scheduled pass makes it ready once it is Online.
    deadline = time.monotonic() + 120
    while not ready_members(deployment):
        assert time.monotonic() < deadline, "the pool's instance never became ready"
        time.sleep(0.5)
    [member] = ready_members(deployment)
    assert stack_instances(deployment, NOT_ENDED) == {member["instance_id"]["S"]: "running"}

    root.destroy(variables)

    assert root.resources() == []
    assert stack_instances(deployment, NOT_ENDED) == {}
    assert stack_instances(deployment, ["terminated"]) == {member["instance_id"]["S"]: "terminated"}
