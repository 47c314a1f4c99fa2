"""acquire (AcquireInstance): the job validated (tests/handlers/test_buildspec.py has every rule), then its instance
launched; the output is the state machine's `job`, `build` and `instance`."""

import base64
import time

import pytest
from conftest import STACK, Cloud, build_spec, make_job

from ec2_action import jobs
from ec2_action.errors import InstanceLaunchFailed, InvalidJobConfiguration, NoCapacity
from ec2_action.handlers import acquire
from emulator import faults
from harness.matrix import SDK_ATTEMPTS


def linux_job(cloud: Cloud, **configuration: str) -> dict:
    return make_job(configuration={"Command": "make test", "ImageId": cloud.linux_ami, **configuration})


def acquired(cloud: Cloud, job: dict) -> dict:
    """AcquireInstance's whole output for a job the poller claimed."""
    jobs.claim(
        job["id"], "1", "arn:aws:states:us-east-1:123456789012:execution:m:" + job["id"], "{}", job["action"], "app"
    )
    return acquire.handler({"job": job, "execution_arn": "arn"}, cloud.context)


def launch(cloud: Cloud, job: dict) -> dict:
    """The instance acquire launched for the job."""
    return acquired(cloud, job)["instance"]


def describe(cloud: Cloud, instance_id: str) -> dict:
    return cloud.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def test_outputs_the_job_its_build_spec_and_its_instance(cloud: Cloud) -> None:
    job = linux_job(cloud)
    before = time.time()
    output = acquired(cloud, job)
    after = time.time()

    assert set(output) == {"job", "build", "instance", "queued"}
    assert output["job"] == job and output["queued"] is False
    assert output["build"] == build_spec(cloud.linux_ami, root_device_name="/dev/sda1", root_volume_gib=30)
    instance = output["instance"]
    assert set(instance) == {"instance_id", "subnet_id", "launched_at", "launched_epoch", "member_id", "pool",
                             "kind", "boot"}  # fmt: skip
    assert (instance["pool"], instance["kind"], instance["boot"]) == ("build", "ephemeral", "launch")
    assert before <= instance["launched_epoch"] <= after + 0.001  # rounded to milliseconds
    described = describe(cloud, instance["instance_id"])
    assert instance["launched_at"] == described["LaunchTime"].isoformat()
    assert "instance_id" not in cloud.item(job["id"])  # acquire writes nothing to the jobs table


def test_an_invalid_job_launches_nothing(cloud: Cloud) -> None:
    with pytest.raises(InvalidJobConfiguration, match=r"ImageId ami-0123456789abcdef0 does not exist"):
        acquired(cloud, linux_job(cloud, ImageId="ami-0123456789abcdef0"))
    assert cloud.client("ec2").describe_instances()["Reservations"] == []


def test_launches_a_tagged_instance_with_an_encrypted_root_volume(cloud: Cloud) -> None:
    job = linux_job(cloud, RootVolumeGiB="40")
    result = launch(cloud, job)
    instance = describe(cloud, result["instance_id"])
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["ec2-action:stack"] == STACK
    assert tags["ec2-action:job-id"] == job["id"]
    assert tags["ec2-action:pipeline"] == "app"
    assert tags["ec2-action:pipeline-execution-id"] == job["pipeline"]["execution_id"]
    assert tags["ec2-action:deadline"].endswith("Z")
    assert tags["Name"] == f"{STACK}-app-{job['id'][:8]}"
    assert instance["InstanceType"] == "t3.large"
    assert instance["ImageId"] == cloud.linux_ami
    assert instance["SubnetId"] == result["subnet_id"] in cloud.settings["subnet_ids"]
    assert "PublicIpAddress" not in instance

    ec2 = cloud.client("ec2")
    root = next(m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sda1")
    volume = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Encrypted"], volume["Size"], volume["VolumeType"]) == (True, 40, "gp3")
    assert {t["Key"]: t["Value"] for t in volume["Tags"]}["ec2-action:job-id"] == job["id"]


def test_user_data_shuts_the_instance_down_after_timeout_registration_and_grace(cloud: Cloud) -> None:
    result = launch(cloud, linux_job(cloud, TimeoutMinutes="60"))  # a task timeout of 3600 + 900 seconds
    attribute = cloud.client("ec2").describe_instance_attribute(InstanceId=result["instance_id"], Attribute="userData")
    script = base64.b64decode(attribute["UserData"]["Value"]).decode()
    assert script == f"#!/bin/bash\nshutdown -h +{(900 + 4500) // 60 + 30}\n"


def test_windows_user_data() -> None:
    assert acquire.user_data("Windows", 120) == "<powershell>shutdown /s /t 7200</powershell>\n"


def test_subnet_rotation_depends_on_the_job_and_covers_every_subnet() -> None:
    subnets = ("subnet-a", "subnet-b", "subnet-c")
    starts = {acquire.subnet_rotation(subnets, f"job-{i}")[0] for i in range(30)}
    assert starts == set(subnets)
    for i in range(5):
        order = acquire.subnet_rotation(subnets, f"job-{i}")
        assert sorted(order) == sorted(subnets) and order == acquire.subnet_rotation(subnets, f"job-{i}")


def test_retried_launch_uses_the_same_client_token(cloud: Cloud) -> None:
    job = linux_job(cloud)
    first = launch(cloud, job)
    second = acquire.handler({"job": job, "execution_arn": "arn"}, cloud.context)["instance"]
    tokens = {describe(cloud, r["instance_id"])["ClientToken"] for r in (first, second)}
    assert len(tokens) == 1 and len(tokens.pop()) <= 64


def test_capacity_error_moves_to_the_next_subnet(cloud: Cloud) -> None:
    job = linux_job(cloud)
    order = acquire.subnet_rotation(tuple(cloud.settings["subnet_ids"]), job["id"])
    # EC2 answers InsufficientInstanceCapacity with HTTP 500, which the SDK retries: one call fails on every attempt.
    faults.inject_api_error(
        "ec2", "RunInstances", "InsufficientInstanceCapacity", "no t3.large here", times=SDK_ATTEMPTS, status=500
    )
    result = launch(cloud, job)
    assert result["subnet_id"] == order[1]
    assert describe(cloud, result["instance_id"])["SubnetId"] == order[1]


def test_no_capacity_anywhere_names_type_and_subnets(cloud: Cloud) -> None:
    faults.inject_api_error("ec2", "RunInstances", "InsufficientInstanceCapacity", "none", times=None, status=500)
    with pytest.raises(NoCapacity) as raised:
        launch(cloud, linux_job(cloud))
    message = str(raised.value)
    assert "t3.large" in message
    assert all(f"{subnet} (InsufficientInstanceCapacity)" in message for subnet in cloud.settings["subnet_ids"])
    assert cloud.client("ec2").describe_instances()["Reservations"] == []


def test_other_launch_errors_carry_the_aws_message(cloud: Cloud) -> None:
    faults.inject_api_error("ec2", "RunInstances", "UnauthorizedOperation", "not allowed to use this AMI", status=403)
    with pytest.raises(InstanceLaunchFailed, match=r"UnauthorizedOperation: not allowed to use this AMI"):
        launch(cloud, linux_job(cloud))
