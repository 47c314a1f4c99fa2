"""Security of the deployed stack, read back from the local cloud after Terraform applied the example.

Every IAM role in the Terraform state is read back from IAM (inline and attached managed policies) and audited with
the least-privilege rules of iam_audit; the builder's launch template, a running builder instance and the SSM
document (whose Linux steps must be exactly the shellchecked script) are checked against what DESIGN.md promises.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from harness.deployment import STACK_TAG, Deployment, unique_name
from harness.terraform import REPO_ROOT
from iam_audit import (
    PASS_ROLE,
    Statement,
    audit,
    codepipeline_job_calls_only,
    dynamodb_only_on_tables,
    ec2_mutations_are_scoped,
    instance_state_changes_only_on_stack,
    no_wildcard_grants,
    normalise,
    pass_role_only_builder_to_ec2,
    s3_only_on_buckets,
    service_linked_roles_only_for,
    who_may,
)

pytestmark = pytest.mark.e2e

BUILDER_MODULE = "module.ec2_action.module.builder"
PIPELINE_TAG = "ec2-action:pipeline"


@dataclass(frozen=True)
class Role:
    name: str
    arn: str
    module: str  # the Terraform module address that created it ("" for the example's root)
    statements: tuple[Statement, ...]


def state_resources(deployment: Deployment, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(module address, attributes) of every instance of resource_type in the deployment's Terraform state."""
    state = json.loads(deployment.terraform.state.read_text())
    for resource in state["resources"]:
        if resource["mode"] == "managed" and resource["type"] == resource_type:
            for instance in resource["instances"]:
                yield resource.get("module", ""), instance["attributes"]


def role_statements(iam: Any, role_name: str) -> list[Statement]:
    """The statements of a role's inline policies and of the default versions of its attached managed policies."""
    statements = []
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        statements += normalise(document, f"{role_name}/{policy_name}")
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        statements += normalise(version["PolicyVersion"]["Document"], f"{role_name}/{attached['PolicyName']}")
    return statements


@pytest.fixture(scope="module")
def roles(deployment: Deployment) -> list[Role]:
    iam = deployment.client("iam")
    return [
        Role(attributes["name"], attributes["arn"], module, tuple(role_statements(iam, attributes["name"])))
        for module, attributes in state_resources(deployment, "aws_iam_role")
    ]


@pytest.fixture(scope="module")
def builder_role_arn(roles: list[Role]) -> str:
    (arn,) = [role.arn for role in roles if role.module == BUILDER_MODULE]
    return arn


def action_type_arns(deployment: Deployment) -> list[str]:
    account = deployment.client("sts").get_caller_identity()["Account"]
    action = deployment.action
    type_id = f"{action['owner']}/{action['category']}/{action['provider']}/{action['version']}"
    return [f"arn:aws:codepipeline:{deployment.cloud.region}:{account}:actiontype:{type_id}"]


def allowed_buckets(deployment: Deployment, role: Role) -> list[str]:
    """The module's roles may use the configured artifact bucket; the example's pipeline role its source too."""
    buckets = [deployment.outputs["artifact_bucket"]]
    if role.arn == deployment.outputs["pipeline_role_arn"]:
        buckets.append(deployment.outputs["source_bucket"])
    return buckets


def test_the_audit_sees_every_role_of_the_stack(deployment: Deployment, roles: list[Role]) -> None:
    prefix = deployment.outputs["name_prefix"]
    names = {role.name for role in roles}
    assert {f"{prefix}-builder", f"{prefix}-acquire", f"{prefix}-poll", f"{prefix}-job", f"{prefix}-pipeline"} <= names
    assert all(role.statements for role in roles), [role.name for role in roles if not role.statements]


def test_every_role_is_least_privilege(deployment: Deployment, roles: list[Role], builder_role_arn: str) -> None:
    common_rules = [
        no_wildcard_grants,
        ec2_mutations_are_scoped,
        pass_role_only_builder_to_ec2(builder_role_arn),
        codepipeline_job_calls_only(action_type_arns(deployment)),
        instance_state_changes_only_on_stack(deployment.outputs["name_prefix"]),
        dynamodb_only_on_tables(
            attributes["arn"] for _, attributes in state_resources(deployment, "aws_dynamodb_table")
        ),
        service_linked_roles_only_for(["ec2fleet.amazonaws.com", "spot.amazonaws.com"]),
    ]
    problems = [
        problem
        for role in roles
        for problem in audit(role.statements, [*common_rules, s3_only_on_buckets(allowed_buckets(deployment, role))])
    ]
    assert problems == []


def test_only_the_launching_functions_pass_a_role_and_each_instance_call_has_its_functions(
    deployment: Deployment, roles: list[Role]
) -> None:
    """acquire (for a job) and keeper (for a pool) launch; only acquire starts a stopped pool's instance, release and
    keeper stop one, and the reaper and the functions that retire instances terminate."""
    prefix = deployment.outputs["name_prefix"]
    policies = {role.name.removeprefix(f"{prefix}-"): role.statements for role in roles}
    assert who_may(policies, PASS_ROLE) == {"acquire", "keeper"}
    assert who_may(policies, "ec2:RunInstances") == {"acquire", "keeper"}
    assert who_may(policies, "ec2:CreateFleet") == {"acquire", "keeper"}
    assert who_may(policies, "iam:CreateServiceLinkedRole") == {"acquire", "keeper"}
    assert who_may(policies, "ec2:StartInstances") == {"acquire"}
    assert who_may(policies, "ec2:StopInstances") == {"release", "keeper"}
    assert who_may(policies, "ec2:TerminateInstances") == {"acquire", "release", "keeper", "reap"}


def test_builder_launch_templates_require_imdsv2_terminate_on_shutdown_and_read_the_deadline_tag(
    deployment: Deployment,
) -> None:
    """One template per platform (EC2 Fleet launches every builder with it): IMDSv2, instance tags readable from
    the metadata (the self-shutdown reads the deadline tag), terminate on shutdown, one network interface with the
    builders' security groups and no public IP, no key pair, and user data that shuts down at the deadline."""
    templates = {attributes["name"]: attributes for _, attributes in state_resources(deployment, "aws_launch_template")}
    prefix = deployment.outputs["name_prefix"]
    assert sorted(templates) == [f"{prefix}-builder", f"{prefix}-builder-windows"]
    ec2 = deployment.client("ec2")
    for name, template in templates.items():
        versions = ec2.describe_launch_template_versions(LaunchTemplateId=template["id"], Versions=["$Default"])
        data = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required", name
        assert data["MetadataOptions"]["HttpEndpoint"] == "enabled", name
        assert data["MetadataOptions"]["InstanceMetadataTags"] == "enabled", name
        assert data["InstanceInitiatedShutdownBehavior"] == "terminate", name
        assert "KeyName" not in data, name
        [interface] = data["NetworkInterfaces"]
        assert int(interface["DeviceIndex"]) == 0, name
        assert str(interface["AssociatePublicIpAddress"]).lower() == "false", name
        assert interface["Groups"] and "SubnetId" not in interface, name
        user_data = base64.b64decode(data["UserData"]).decode()
        assert "tags/instance/ec2-action:deadline" in user_data, name
        assert ("shutdown /s" if name.endswith("-windows") else "shutdown -h") in user_data, name


def running_builder(deployment: Deployment, pipeline_name: str, timeout: float = 120) -> dict[str, Any]:
    """The builder instance of pipeline_name once it runs (the job's command keeps it busy meanwhile)."""
    filters = [
        {"Name": f"tag:{STACK_TAG}", "Values": [deployment.outputs["name_prefix"]]},
        {"Name": f"tag:{PIPELINE_TAG}", "Values": [pipeline_name]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reservations = deployment.client("ec2").describe_instances(Filters=filters)["Reservations"]
        if reservations:
            return reservations[0]["Instances"][0]
        time.sleep(0.5)
    raise AssertionError(f"no running builder for {pipeline_name} within {timeout} s")


def test_a_builder_has_an_encrypted_root_volume_no_public_ip_and_no_ingress(deployment: Deployment) -> None:
    config = {"ImageId": deployment.outputs["image_id"], "InstanceType": "t4g.micro", "Command": "sleep 15"}
    pipeline = deployment.create_pipeline(unique_name("sec"), config, output_artifact=False)
    deployment.upload_source(pipeline, {"README.md": "hello\n"})
    started = time.time()
    execution_id = deployment.start(pipeline)

    instance = running_builder(deployment, pipeline)
    ec2 = deployment.client("ec2")
    volume_ids = [mapping["Ebs"]["VolumeId"] for mapping in instance["BlockDeviceMappings"]]
    volumes = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
    group_ids = [group["GroupId"] for group in instance["SecurityGroups"]]
    groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]

    assert volumes and all(volume["Encrypted"] for volume in volumes), volumes
    assert "PublicIpAddress" not in instance, instance.get("PublicIpAddress")
    assert not [i["Association"] for i in instance["NetworkInterfaces"] if i.get("Association", {}).get("PublicIp")]
    assert groups and all(group["IpPermissions"] == [] for group in groups), groups
    run = deployment.wait(pipeline, execution_id, started)
    assert run.status == "Succeeded", run.final_result
    assert run.live_instances == []


def test_ssm_document_runs_exactly_the_shellchecked_script(deployment: Deployment) -> None:
    document = deployment.client("ssm").get_document(Name=deployment.outputs["document_name"])
    steps = {step["name"]: step for step in json.loads(document["Content"])["mainSteps"]}
    linux = "\n".join(steps["BuildOnLinux"]["inputs"]["runCommand"])
    windows = "\n".join(steps["BuildOnWindows"]["inputs"]["runCommand"])
    assert linux == (REPO_ROOT / "ssm" / "linux" / "run-build.sh").read_text()
    assert windows == (REPO_ROOT / "ssm" / "windows" / "run-build.ps1").read_text()
