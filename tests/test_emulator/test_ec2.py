"""EC2 fidelity fixes of the local cloud."""

from __future__ import annotations

import boto3
from moto import mock_aws

from emulator import patches


def test_a_launch_templates_own_tags_stay_out_of_its_data() -> None:
    patches.apply()
    with mock_aws():
        client = boto3.client("ec2", region_name="us-east-1")
        client.create_launch_template(
            LaunchTemplateName="builder",
            LaunchTemplateData={
                "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "builder"}]}]
            },
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "Stack", "Value": "demo"}]}],
        )

        [version] = client.describe_launch_template_versions(LaunchTemplateName="builder")["LaunchTemplateVersions"]
        [template] = client.describe_launch_templates(LaunchTemplateNames=["builder"])["LaunchTemplates"]

    assert version["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "builder"}]}
    ]
    assert template["Tags"] == [{"Key": "Stack", "Value": "demo"}]
