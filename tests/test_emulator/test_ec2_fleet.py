"""EC2 Fleet in the local cloud: CreateFleet of Type instant, its capacity pools, allocation strategies, per-override
errors and idempotency; answers checked against botocore's model of CreateFleetResult."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import faults, patches

REGION = "us-east-1"
USER_DATA = "#!/bin/sh\necho from the launch template\n"
EC2_MODEL = botocore.session.get_session().get_service_model("ec2")


@pytest.fixture(autouse=True)
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LOCALCLOUD_SSM_REGISTRATION_DELAY", "0")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # loading moto's ~1,300 AMIs takes seconds
    monkeypatch.delenv("MOTO_IAM_LOAD_MANAGED_POLICIES", raising=False)  # so does loading AWS's managed policies
    patches.apply()
    with mock_aws():
        yield
    faults.clear()


@pytest.fixture
def ec2() -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def images(ec2: Any) -> tuple[str, str]:
    """Two images: the launch template's and another an override names."""
    return tuple(ec2.register_image(Name=name, RootDeviceName="/dev/xvda")["ImageId"] for name in ("base", "other"))


@pytest.fixture
def network(ec2: Any, images: tuple[str, str]) -> dict[str, Any]:
    """Two subnets in two zones of the default VPC, a security group, an instance profile and the builders' launch
    template (no subnet: the fleet's overrides give it)."""
    subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    zones = sorted(subnets)[:2]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="builders", Description="builders", VpcId=vpc)["GroupId"]
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="builder", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="builder")
    iam.add_role_to_instance_profile(InstanceProfileName="builder", RoleName="builder")
    template = ec2.create_launch_template(
        LaunchTemplateName="builder",
        LaunchTemplateData={
            "ImageId": images[0],
            "UserData": base64.b64encode(USER_DATA.encode()).decode(),
            "IamInstanceProfile": {"Name": "builder"},
            "InstanceInitiatedShutdownBehavior": "terminate",
            "MetadataOptions": {"HttpTokens": "required", "InstanceMetadataTags": "enabled"},
            "NetworkInterfaces": [
                {"DeviceIndex": 0, "Groups": [group], "AssociatePublicIpAddress": False, "DeleteOnTermination": True}
            ],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Role", "Value": "builder"}]}],
        },
    )["LaunchTemplate"]
    return {
        "zones": zones,
        "subnets": [subnets[zone] for zone in zones],
        "group": group,
        "template": template["LaunchTemplateId"],
        "other_image": images[1],
    }


def _override(network: dict[str, Any], instance_type: str, zone_index: int, **extra: Any) -> dict[str, Any]:
    return {"InstanceType": instance_type, "SubnetId": network["subnets"][zone_index], **extra}


def _fleet(ec2: Any, network: dict[str, Any], overrides: list[dict[str, Any]], lifecycle: str = "on-demand",
           strategy: str | None = None, count: int = 1, **extra: Any) -> dict[str, Any]:  # fmt: skip
    target = {"TotalTargetCapacity": count, "DefaultTargetCapacityType": lifecycle}
    target["SpotTargetCapacity" if lifecycle == "spot" else "OnDemandTargetCapacity"] = count
    options: dict[str, Any] = {}
    if lifecycle == "spot":
        options["SpotOptions"] = {"AllocationStrategy": strategy or "price-capacity-optimized",
                                  "InstanceInterruptionBehavior": "terminate"}  # fmt: skip
    elif strategy:
        options["OnDemandOptions"] = {"AllocationStrategy": strategy}
    answer = ec2.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[
            {"LaunchTemplateSpecification": {"LaunchTemplateId": network["template"], "Version": "1"},
             "Overrides": overrides}
        ],
        TargetCapacitySpecification=target,
        **options,
        **extra,
    )  # fmt: skip
    answer.pop("ResponseMetadata")
    return answer


def _described(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _launched(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(instance type, subnet, lifecycle) of every instance launched, in the answer's order."""
    return [
        (group["InstanceType"], group["LaunchTemplateAndOverrides"]["Overrides"]["SubnetId"], group["Lifecycle"])
        for group in answer["Instances"]
        for _ in group["InstanceIds"]
    ]


def _errors(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (e["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"], e["Lifecycle"], e["ErrorCode"])
        for e in answer["Errors"]
    ]


def assert_fits(value: Any, shape: Any, path: str = "") -> None:
    """Every member of `value` is one `shape` (a botocore shape) declares, with its type."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        for key, member in value.items():
            assert key in shape.members, f"{path}.{key} is not a member of {shape.name}"
            assert_fits(member, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            assert_fits(item, shape.member, f"{path}[{index}]")
    elif shape.type_name == "string":
        assert isinstance(value, str), path
        if shape.enum:
            assert value in shape.enum, f"{path}={value!r} not in {shape.name}"
    elif shape.type_name in ("integer", "long"):
        assert isinstance(value, int), path
    elif shape.type_name in ("double", "float"):
        assert isinstance(value, float), path
    elif shape.type_name == "boolean":
        assert isinstance(value, bool), path


def test_an_instant_fleet_launches_through_the_launch_template_with_the_overrides_type_subnet_image_and_disk(
    ec2: Any, network: dict[str, Any]
) -> None:
    root = {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True,
                                               "DeleteOnTermination": True}}  # fmt: skip
    override = _override(
        network, "t3.large", 1, ImageId=network["other_image"], BlockDeviceMappings=[root], Priority=0.0
    )
    job_tags = [{"ResourceType": "instance", "Tags": [{"Key": "job", "Value": "j-1"}]}]
    answer = _fleet(ec2, network, [override], strategy="prioritized", TagSpecifications=job_tags)

    assert_fits(answer, EC2_MODEL.operation_model("CreateFleet").output_shape)
    assert answer["Errors"] == []
    [group] = answer["Instances"]
    assert group["Lifecycle"] == "on-demand" and group["InstanceType"] == "t3.large"
    assert group["LaunchTemplateAndOverrides"] == {
        "LaunchTemplateSpecification": {"LaunchTemplateId": network["template"], "Version": "1"},
        "Overrides": override,
    }
    instance = _described(ec2, group["InstanceIds"][0])
    assert (instance["InstanceType"], instance["SubnetId"], instance["ImageId"]) == (
        "t3.large", network["subnets"][1], network["other_image"]
    )  # fmt: skip
    assert instance["Placement"]["AvailabilityZone"] == network["zones"][1]
    assert "InstanceLifecycle" not in instance and "SpotInstanceRequestId" not in instance
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [network["group"]]
    assert instance["IamInstanceProfile"]["Arn"].endswith(":instance-profile/builder")
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["job"] == "j-1" and tags["Role"] == "builder" and tags["aws:ec2:fleet-id"] == answer["FleetId"]
    assert [m["DeviceName"] for m in instance["BlockDeviceMappings"]] == ["/dev/xvda"]
    volume = ec2.describe_volumes(VolumeIds=[instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (30, "gp3", True)
    user_data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]).decode() == USER_DATA
    shutdown = ec2.describe_instance_attribute(
        InstanceId=instance["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
    )["InstanceInitiatedShutdownBehavior"]["Value"]
    assert shutdown == "terminate"
    ssm = boto3.client("ssm", region_name=REGION)
    registered = ssm.describe_instance_information()["InstanceInformationList"]
    assert [i["InstanceId"] for i in registered] == [instance["InstanceId"]]  # the SSM Agent came with it


def test_a_spot_instance_has_the_spot_lifecycle_and_a_spot_request(ec2: Any, network: dict[str, Any]) -> None:
    answer = _fleet(ec2, network, [_override(network, "m5.large", 0)], lifecycle="spot")

    [group] = answer["Instances"]
    instance = _described(ec2, group["InstanceIds"][0])
    assert group["Lifecycle"] == "spot"
    assert instance["InstanceLifecycle"] == "spot"
    assert instance["SpotInstanceRequestId"].startswith("sir-")


def test_prioritized_tries_the_lowest_priority_first_whatever_the_request_order(
    ec2: Any, network: dict[str, Any]
) -> None:
    overrides = [
        _override(network, "m5.large", 0, Priority=2.0),
        _override(network, "t3.large", 1, Priority=0.0),
        _override(network, "c5.large", 0, Priority=1.0),
    ]
    answer = _fleet(ec2, network, overrides, strategy="prioritized")

    assert _launched(answer) == [("t3.large", network["subnets"][1], "on-demand")]


def test_a_pool_without_capacity_is_an_error_worded_as_ec2_words_it_and_the_next_pool_launches(
    ec2: Any, network: dict[str, Any]
) -> None:
    faults.fleet_capacity("on-demand", "t3.large", network["zones"][0])
    overrides = [_override(network, "t3.large", 0, Priority=0.0), _override(network, "t3.large", 1, Priority=1.0)]

    answer = _fleet(ec2, network, overrides, strategy="prioritized")

    assert _launched(answer) == [("t3.large", network["subnets"][1], "on-demand")]
    [error] = answer["Errors"]
    assert error["ErrorCode"] == "InsufficientInstanceCapacity" and error["Lifecycle"] == "on-demand"
    zone = network["zones"][0]
    assert error["ErrorMessage"].startswith(
        f"We currently do not have sufficient t3.large capacity in the Availability Zone you requested ({zone})."
    )
    assert network["zones"][1] in error["ErrorMessage"]  # EC2 names the zones that have it
    assert error["LaunchTemplateAndOverrides"]["Overrides"]["SubnetId"] == network["subnets"][0]


def test_no_spot_capacity_anywhere_answers_every_pool_tried_and_no_instance(ec2: Any, network: dict[str, Any]) -> None:
    faults.fleet_capacity("spot")
    overrides = [_override(network, t, z) for t in ("t3.large", "m5.large") for z in (0, 1)]

    answer = _fleet(ec2, network, overrides, lifecycle="spot", strategy="capacity-optimized-prioritized")

    assert_fits(answer, EC2_MODEL.operation_model("CreateFleet").output_shape)
    assert answer["Instances"] == []
    assert [(e["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"],
             e["LaunchTemplateAndOverrides"]["Overrides"]["SubnetId"]) for e in answer["Errors"]] == [
        (o["InstanceType"], o["SubnetId"]) for o in overrides
    ]  # fmt: skip
    assert {(e["Lifecycle"], e["ErrorCode"], e["ErrorMessage"]) for e in answer["Errors"]} == {
        ("spot", "InsufficientInstanceCapacity", "There is no Spot capacity available that matches your request.")
    }
    on_demand = _fleet(ec2, network, overrides[:1])  # spot and on-demand capacity are apart
    assert _launched(on_demand) == [("t3.large", network["subnets"][0], "on-demand")]


def test_capacity_counts_down_per_pool_and_the_latest_limit_governs(ec2: Any, network: dict[str, Any]) -> None:
    faults.fleet_capacity("spot", available=0)
    faults.fleet_capacity("spot", "m5.large", network["zones"][1], available=1)
    overrides = [_override(network, "m5.large", 0), _override(network, "m5.large", 1)]

    first = _fleet(ec2, network, overrides, lifecycle="spot")
    second = _fleet(ec2, network, overrides, lifecycle="spot")

    assert _launched(first) == [("m5.large", network["subnets"][1], "spot")]
    assert _launched(second) == [] and len(second["Errors"]) == 2
    faults.clear()  # every pool unlimited again
    assert len(_launched(_fleet(ec2, network, overrides, lifecycle="spot"))) == 1


def test_capacity_optimized_picks_the_pool_with_most_capacity_left(ec2: Any, network: dict[str, Any]) -> None:
    faults.fleet_capacity("spot", "t3.large", available=2)
    faults.fleet_capacity("spot", "m5.large", available=5)
    overrides = [_override(network, "t3.large", 0), _override(network, "m5.large", 0)]

    answer = _fleet(ec2, network, overrides, lifecycle="spot", strategy="capacity-optimized")

    assert _launched(answer) == [("m5.large", network["subnets"][0], "spot")]


def test_lowest_price_takes_request_order_and_diversified_spreads(ec2: Any, network: dict[str, Any]) -> None:
    overrides = [_override(network, "t3.large", 0), _override(network, "m5.large", 1)]

    lowest = _fleet(ec2, network, overrides, lifecycle="spot", strategy="lowest-price", count=2)
    spread = _fleet(ec2, network, overrides, lifecycle="spot", strategy="diversified", count=2)

    assert [t for t, _, _ in _launched(lowest)] == ["t3.large", "t3.large"]
    assert sorted(t for t, _, _ in _launched(spread)) == ["m5.large", "t3.large"]


def test_the_same_client_token_answers_the_same_fleet_and_launches_nothing_more(
    ec2: Any, network: dict[str, Any]
) -> None:
    overrides = [_override(network, "t3.large", 0)]

    first = _fleet(ec2, network, overrides, ClientToken="member-1-gen-1")
    again = _fleet(ec2, network, overrides, ClientToken="member-1-gen-1")
    other = _fleet(ec2, network, overrides, ClientToken="member-1-gen-2")

    assert again == first and other["FleetId"] != first["FleetId"]
    running = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(running) == 2
    with pytest.raises(ClientError) as refused:
        _fleet(ec2, network, [_override(network, "m5.large", 0)], ClientToken="member-1-gen-1")
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatch"


def test_a_client_token_is_forgotten_with_the_cloud(ec2: Any, network: dict[str, Any]) -> None:
    from moto.moto_api._internal.models import moto_api_backend

    first = _fleet(ec2, network, [_override(network, "t3.large", 0)], ClientToken="member-1-gen-1")
    moto_api_backend.reset()  # a new, empty cloud: the same member ids come again in another test
    fresh = boto3.client("ec2", region_name=REGION)
    image = fresh.register_image(Name="base", RootDeviceName="/dev/xvda")["ImageId"]
    template = fresh.create_launch_template(LaunchTemplateName="builder", LaunchTemplateData={"ImageId": image})
    subnet = fresh.describe_subnets()["Subnets"][0]["SubnetId"]
    again = fresh.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[{"LaunchTemplateSpecification": {"LaunchTemplateId": template["LaunchTemplate"][
            "LaunchTemplateId"], "Version": "1"}, "Overrides": [{"InstanceType": "t3.large", "SubnetId": subnet}]}],
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
        ClientToken="member-1-gen-1",
    )  # fmt: skip

    assert again["FleetId"] != first["FleetId"]
    [instance_id] = again["Instances"][0]["InstanceIds"]
    assert _described(fresh, instance_id)["State"]["Name"] == "running"


def test_a_missing_launch_template_is_each_overrides_error_and_no_launch_template_at_all_is_refused(
    ec2: Any, network: dict[str, Any]
) -> None:
    answer = ec2.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[{"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0123456789abcdef0",
                                                                "Version": "1"},
                                "Overrides": [_override(network, "t3.large", 0)]}],
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
    )  # fmt: skip

    assert answer["Instances"] == []
    [error] = answer["Errors"]
    assert error["ErrorCode"] == "InvalidLaunchTemplateId.NotFound"
    assert (
        error["ErrorMessage"] == "The specified launch template, with template ID lt-0123456789abcdef0, does not exist."
    )
    for configs in ([], [{"LaunchTemplateSpecification": {"Version": "1"}}]):
        with pytest.raises(ClientError) as refused:
            ec2.create_fleet(
                Type="instant",
                LaunchTemplateConfigs=configs,
                TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
            )
        assert refused.value.response["Error"]["Code"] == "MissingParameter"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_launch_ec2_refuses_is_that_overrides_error_and_the_next_pool_launches(
    ec2: Any, network: dict[str, Any]
) -> None:
    overrides = [
        {"InstanceType": "t3.large", "SubnetId": "subnet-00000000000000000"},
        _override(network, "m5.large", 1),
    ]

    answer = _fleet(ec2, network, overrides)

    assert _launched(answer) == [("m5.large", network["subnets"][1], "on-demand")]
    assert _errors(answer) == [("t3.large", "on-demand", "InvalidSubnetID.NotFound")]


def test_an_unknown_allocation_strategy_is_refused(ec2: Any, network: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as refused:
        _fleet(ec2, network, [_override(network, "t3.large", 0)], strategy="cheapest")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_fleets_of_type_maintain_stay_motos(ec2: Any, network: dict[str, Any]) -> None:
    answer = ec2.create_fleet(
        Type="maintain",
        LaunchTemplateConfigs=[{"LaunchTemplateSpecification": {"LaunchTemplateId": network["template"],
                                                                "Version": "1"},
                                "Overrides": [_override(network, "t3.large", 0)]}],
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
    )  # fmt: skip

    assert answer["FleetId"].startswith("fleet-") and "Instances" not in answer
