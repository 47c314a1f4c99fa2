"""The module's lifecycle in the local cloud: apply, plan shows no changes, destroy leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.server import LocalCloud
from harness.deployment import EXAMPLE, Deployment
from harness.terraform import TerraformRoot

pytestmark = pytest.mark.e2e


def test_plan_after_apply_shows_no_changes(deployment: Deployment) -> None:
    assert deployment.terraform.plan_changes(deployment.variables) == ""


def _leftovers(deployment: Deployment, prefix: str) -> dict[str, list[str]]:
    """Everything named with prefix that the module or the example creates, per service."""
    lambdas = deployment.client("lambda").list_functions()["Functions"]
    machines = deployment.client("stepfunctions").list_state_machines()["stateMachines"]
    roles = deployment.client("iam").list_roles()["Roles"]
    profiles = deployment.client("iam").list_instance_profiles()["InstanceProfiles"]
    rules = deployment.client("events").list_rules()["Rules"]
    tables = deployment.client("dynamodb").list_tables()["TableNames"]
    groups = deployment.client("logs").describe_log_groups()["logGroups"]
    documents = deployment.client("ssm").list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])
    templates = deployment.client("ec2").describe_launch_templates()["LaunchTemplates"]
    action_types = deployment.client("codepipeline").list_action_types(actionOwnerFilter="Custom")["actionTypes"]
    pipelines = deployment.client("codepipeline").list_pipelines()["pipelines"]
    buckets = deployment.client("s3").list_buckets()["Buckets"]
    found = {
        "lambda functions": [f["FunctionName"] for f in lambdas],
        "state machines": [m["name"] for m in machines],
        "iam roles": [r["RoleName"] for r in roles],
        "instance profiles": [p["InstanceProfileName"] for p in profiles],
        "event rules": [r["Name"] for r in rules],
        "dynamodb tables": tables,
        "log groups": [g["logGroupName"].strip("/").split("/")[-1] for g in groups],
        "ssm documents": [d["Name"] for d in documents["DocumentIdentifiers"]],
        "launch templates": [t["LaunchTemplateName"] for t in templates],
        "pipelines": [p["name"] for p in pipelines],
        "buckets": [b["Name"] for b in buckets],
    }
    leftovers = {kind: [n for n in names if prefix in n] for kind, names in found.items()}
    # Custom action types are not named by the prefix: the example's provider is.
    leftovers["action types"] = [
        t["id"]["provider"] for t in action_types if t["id"]["provider"] == deployment.action["provider"]
    ]
    return {kind: names for kind, names in leftovers.items() if names}


def test_a_second_stack_applies_beside_the_first_and_destroys_without_leftovers(
    local_cloud: LocalCloud, deployment: Deployment, tmp_path: Path
) -> None:
    prefix = "ec2-build-second"
    variables = {"region": local_cloud.region, "name_prefix": prefix, "vpc_cidr_block": "10.43.0.0/16"}
    second = TerraformRoot(EXAMPLE, tmp_path, env=local_cloud.env())
    second.init()
    # The example's action type is shared by name; a second stack must bring its own provider name.
    second.apply({**variables, "action_provider": "EC2-Linux-Second"})
    assert second.resources(), "nothing was applied"
    second_deployment = Deployment(local_cloud, second, second.outputs())
    assert _leftovers(second_deployment, prefix), "the leftover check sees nothing even while the stack exists"

    second.destroy({**variables, "action_provider": "EC2-Linux-Second"})

    assert second.resources() == []
    assert _leftovers(second_deployment, prefix) == {}
    assert deployment.terraform.plan_changes(deployment.variables) == "", "the first stack was touched"
