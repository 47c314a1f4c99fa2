"""The fixtures hold what Terraform produces (conftest.py): here, checked against Terraform's rendering and the HCL.

tests/test_fixtures_from_terraform.py shows that the rendering is Terraform's own and that a change in the HCL
reaches it; these tests show that the handlers' cloud is made of it.
"""

from __future__ import annotations

import json
import os

from conftest import ACTION, CONFIG_VARIABLES, CREATED, Cloud, Pipeline

from ec2_action import config
from harness import rendered


def test_the_functions_configuration_is_terraforms_with_the_created_resources(cloud: Cloud) -> None:
    terraforms = rendered.lambda_config(CONFIG_VARIABLES)
    assert json.loads(os.environ[config.ENV_VAR]) == cloud.settings

    assert cloud.settings.keys() == terraforms.keys()
    differing = {key for key in terraforms if cloud.settings[key] != terraforms[key]}
    # Only the stand-ins differ (the subnets' zones are keyed by them): they are now the resources created in moto.
    assert differing == set(CREATED) | {"subnet_zones"}
    ec2, sfn = cloud.client("ec2"), cloud.client("stepfunctions")
    assert len(ec2.describe_subnets(SubnetIds=cloud.settings["subnet_ids"])["Subnets"]) == 3
    assert ec2.describe_security_groups(GroupIds=cloud.settings["security_group_ids"])["SecurityGroups"]
    template_ids = [template["id"] for template in cloud.settings["launch_templates"].values()]
    assert len(ec2.describe_launch_templates(LaunchTemplateIds=template_ids)["LaunchTemplates"]) == 2
    assert sfn.describe_state_machine(stateMachineArn=cloud.settings["state_machine_arn"])["status"] == "ACTIVE"


def test_a_change_of_inputs_is_rendered_by_terraform(cloud: Cloud) -> None:
    cloud.configure(ssm_registration_timeout_minutes=2, actions=cloud.action_variables(versions=["2", "1"]))

    assert config.load().ssm_registration_timeout_seconds == 120  # minutes * 60: Terraform's arithmetic
    assert [action.version for action in config.load().actions] == ["2", "1"]
    assert config.load().subnet_ids == tuple(cloud.created[stand_in] for stand_in in CREATED["subnet_ids"])


def test_the_document_is_terraforms(cloud: Cloud) -> None:
    document = cloud.client("ssm").get_document(Name=cloud.settings["document_name"])
    assert document["Content"] == rendered.ssm_document()


def test_the_action_type_has_every_property_of_the_hcl(cloud: Cloud, pipeline: Pipeline) -> None:
    action = CONFIG_VARIABLES["actions"]["build"]
    hcl = rendered.action_type_definition({"image_id": action["image_id"], "instance_type": action["instance_type"]})
    [registered] = [
        action_type
        for action_type in pipeline.client.list_action_types(actionOwnerFilter="Custom")["actionTypes"]
        if action_type["id"] == ACTION
    ]

    # CodePipeline does not return a property's type (emulator.codepipeline.models): every other field is compared.
    untyped = [{key: value for key, value in p.items() if key != "type"} for p in hcl["configurationProperties"]]
    assert registered["actionConfigurationProperties"] == untyped
    assert [p["name"] for p in registered["actionConfigurationProperties"]] == [
        "ImageId", "InstanceType", "Command", "WorkingDirectory", "OutputArtifactPath", "TimeoutMinutes",
        "RootVolumeGiB",
    ]  # fmt: skip
    assert registered["inputArtifactDetails"] == hcl["inputArtifactDetails"]
    assert registered["outputArtifactDetails"] == hcl["outputArtifactDetails"]
