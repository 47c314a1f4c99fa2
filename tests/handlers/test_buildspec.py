"""buildspec.validated (acquire's first half): the action's defaults applied, every guardrail and the AMI checked
against the cloud, before anything launches."""

from datetime import UTC, datetime

import pytest
from conftest import REGION, Cloud, make_job
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id
from pool_fixtures import configure_pool

from ec2_action import buildspec, config
from ec2_action.errors import InvalidJobConfiguration


def validated(cloud: Cloud, job: dict) -> dict:
    return buildspec.validated(config.load(), job, cloud.context)


def run(cloud: Cloud, **configuration: str) -> dict:
    return validated(cloud, make_job(configuration={"Command": "make test", **configuration}))


def test_linux_job_gets_the_action_defaults_and_the_ami_root_device(cloud: Cloud) -> None:
    cloud.configure(actions=cloud.action_variables(root_volume_size_gib=None))  # an action without a volume default
    build = run(cloud, ImageId=cloud.linux_ami)
    assert build == {
        "image_id": cloud.linux_ami,
        "instance_type": "t3.large",  # the action type's default
        "instance_types": ["t3.large"],  # the action sets no other types
        "platform": "Linux",
        "root_device_name": "/dev/sda1",
        "root_volume_gib": 15,  # the AMI's root snapshot
        "timeout_minutes": 60,
        "command_timeout_seconds": 3600,
        "task_timeout_seconds": 3600 + 900,
        "command": "make test",
        "working_directory": "",
        "output_artifact_path": "",
    }


def test_the_actions_root_volume_default_applies(cloud: Cloud) -> None:
    """The root module always passes one (root_volume_size_gib, 50 unless set): here CONFIG_VARIABLES' 30."""
    assert run(cloud, ImageId=cloud.linux_ami)["root_volume_gib"] == 30
    assert run(cloud, ImageId=cloud.linux_ami, RootVolumeGiB="20")["root_volume_gib"] == 20


def test_job_settings_override_defaults(cloud: Cloud) -> None:
    build = run(cloud, ImageId=cloud.windows_ami, InstanceType="m6i.large", TimeoutMinutes="15", RootVolumeGiB="64",
                WorkingDirectory="C:\\src")  # fmt: skip
    assert build["platform"] == "Windows"
    assert (build["instance_type"], build["timeout_minutes"], build["root_volume_gib"]) == ("m6i.large", 15, 64)
    assert build["instance_types"] == ["m6i.large"]  # the job's type alone: the action's list is not added
    assert build["task_timeout_seconds"] == 15 * 60 + 900
    assert build["working_directory"] == "C:\\src"


def test_ami_default_of_the_action_type(cloud: Cloud) -> None:
    cloud.configure(actions=cloud.action_variables(image_id=cloud.linux_ami, instance_type="t3.micro"))
    assert run(cloud)["image_id"] == cloud.linux_ami


def test_own_ami_is_allowed_as_self(cloud: Cloud) -> None:
    assert run(cloud, ImageId=cloud.own_ami)["image_id"] == cloud.own_ami
    cloud.configure(allowed_image_owners=["amazon"])
    with pytest.raises(InvalidJobConfiguration, match=rf"ImageId {cloud.own_ami} is owned by 123456789012.*amazon"):
        run(cloud, ImageId=cloud.own_ami)


def test_unknown_ami_names_the_ami_and_region(cloud: Cloud) -> None:
    with pytest.raises(
        InvalidJobConfiguration, match=r"ImageId ami-0123456789abcdef0 does not exist in region us-east-1"
    ):
        run(cloud, ImageId="ami-0123456789abcdef0")


def test_allowed_image_ids_restrict_further(cloud: Cloud) -> None:
    cloud.configure(allowed_image_ids=[cloud.windows_ami])
    with pytest.raises(InvalidJobConfiguration, match=rf"ImageId {cloud.linux_ami} is not in .*allowed AMIs"):
        run(cloud, ImageId=cloud.linux_ami)
    assert run(cloud, ImageId=cloud.windows_ami, RootVolumeGiB="50")["platform"] == "Windows"


def test_root_volume_smaller_than_the_snapshot(cloud: Cloud) -> None:
    with pytest.raises(InvalidJobConfiguration, match=r"RootVolumeGiB 8 is smaller than the root snapshot .*15 GiB"):
        run(cloud, ImageId=cloud.linux_ami, RootVolumeGiB="8")


def test_every_problem_is_listed_by_property(cloud: Cloud) -> None:
    with pytest.raises(InvalidJobConfiguration) as raised:
        run(cloud, ImageId="ami-nope", InstanceType="p5.48xlarge", Command=" ", TimeoutMinutes="9999",
            OutputArtifactPath="../x")  # fmt: skip
    lines = str(raised.value).splitlines()
    named = [line.split()[0] for line in lines]
    assert named == ["ImageId", "InstanceType", "Command", "TimeoutMinutes"] + ["OutputArtifactPath"] * 2


def test_output_artifact_needs_a_path_and_a_path_needs_an_artifact(cloud: Cloud) -> None:
    job = make_job(
        configuration={"Command": "make", "ImageId": cloud.linux_ami},
        output_artifact={"name": "BuildOutput", "bucket": "artifacts-bucket", "key": "app/Build/out.zip"},
    )
    with pytest.raises(InvalidJobConfiguration, match=r"OutputArtifactPath is missing.*'BuildOutput'"):
        validated(cloud, job)
    job["configuration"]["OutputArtifactPath"] = "dist"
    assert validated(cloud, job)["output_artifact_path"] == "dist"
    with pytest.raises(InvalidJobConfiguration, match=r"OutputArtifactPath is set but the action declares no output"):
        run(cloud, ImageId=cloud.linux_ami, OutputArtifactPath="dist")


# --- instance types: one or a list, each allowed (DESIGN.md, "Spot and capacity fallback") -------------------------


def test_a_job_lists_instance_types_in_its_order_of_preference(cloud: Cloud) -> None:
    build = run(cloud, ImageId=cloud.linux_ami, InstanceType=" m6i.large,t3.large , m6i.large,, t3.xlarge")
    assert build["instance_types"] == ["m6i.large", "t3.large", "t3.xlarge"]  # stripped, repeats and blanks dropped
    assert build["instance_type"] == "m6i.large"


def test_without_instance_type_a_job_gets_the_actions_default_then_its_instance_types(cloud: Cloud) -> None:
    cloud.configure(actions=cloud.action_variables(instance_types=["m6i.large", "t3.large", "t3.xlarge"]))
    build = run(cloud, ImageId=cloud.linux_ami)
    assert build["instance_types"] == ["t3.large", "m6i.large", "t3.xlarge"]  # the default first, once
    assert build["instance_type"] == "t3.large"


def test_every_listed_type_is_checked_against_the_allowed_types(cloud: Cloud) -> None:
    with pytest.raises(InvalidJobConfiguration) as raised:
        run(cloud, ImageId=cloud.linux_ami, InstanceType="t3.large, p5.48xlarge, c7g.large")
    assert str(raised.value) == (
        "InstanceType 'p5.48xlarge', 'c7g.large' are not allowed: this module allows t3.*, m6i.*."
    )
    assert cloud.client("ec2").describe_instances()["Reservations"] == []


def test_the_actions_own_types_are_checked_too(cloud: Cloud) -> None:
    """Terraform refuses an instance_types entry outside allowed_instance_types at plan time; a job of an action
    configured before the allowed list was narrowed is refused all the same."""
    cloud.configure(actions=cloud.action_variables(instance_types=["m6i.large"]), allowed_instance_types=["t3.*"])
    with pytest.raises(InvalidJobConfiguration, match=r"InstanceType 'm6i.large' is not allowed: .* allows t3\.\*\."):
        run(cloud, ImageId=cloud.linux_ami)


def test_at_most_20_types(cloud: Cloud) -> None:
    types = ",".join(f"t3.size{i}" for i in range(21))
    with pytest.raises(InvalidJobConfiguration, match=r"InstanceType lists 21 types: at most 20 are allowed\."):
        run(cloud, ImageId=cloud.linux_ami, InstanceType=types)


# --- Rules that need the AMI: architecture, and Windows' root volume and hibernation --------------------------------


def amazon_ami(name: str, architecture: str, platform: str | None = None, created: str = "2025-01-15") -> str:
    """An Amazon AMI as DescribeImages describes it: its Architecture, Name, CreationDate and (Windows) Platform."""
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    ami_id = random_ami_id()
    backend.amis[ami_id] = Ami(
        backend, ami_id, name=name, owner_id="801119661308", owner_alias="amazon", public=True, platform=platform,
        architecture=architecture, creation_date=datetime.fromisoformat(created).replace(tzinfo=UTC),
        root_device_type="ebs", root_device_name="/dev/sda1",
    )  # fmt: skip
    return ami_id


def test_an_arm64_ami_needs_a_graviton_type(cloud: Cloud) -> None:
    cloud.configure(allowed_instance_types=["t3.*", "t4g.*"])
    arm = amazon_ami("al2023-ami-2023.6-kernel-6.1-arm64", "arm64")
    assert run(cloud, ImageId=arm, InstanceType="t4g.large")["instance_type"] == "t4g.large"
    with pytest.raises(
        InvalidJobConfiguration, match=rf"InstanceType 't3.large' runs x86_64 but ImageId {arm} is arm64"
    ):
        run(cloud, ImageId=arm)  # the action's default type, t3.large


def test_a_windows_build_needs_room_for_its_container_images(cloud: Cloud) -> None:
    """The action's default here is 30 GiB (CONFIG_VARIABLES): enough for Linux, too little for Windows."""
    with pytest.raises(InvalidJobConfiguration, match=r"RootVolumeGiB 30 is too small for a Windows build"):
        run(cloud, ImageId=cloud.windows_ami)
    assert run(cloud, ImageId=cloud.windows_ami, RootVolumeGiB="50")["root_volume_gib"] == 50
    assert run(cloud, ImageId=cloud.linux_ami)["root_volume_gib"] == 30


def test_a_hibernating_windows_pool_needs_at_most_16_gib(cloud: Cloud) -> None:
    windows = amazon_ami("Windows_Server-2022-English-Full-Base-2025.01.15", "x86_64", "windows")
    configure_pool(cloud, strategy="stopped", hibernate=True)
    cloud.configure(
        actions=cloud.action_variables(image_id=windows, instance_type="m6i.2xlarge", root_volume_size_gib=64)
    )
    with pytest.raises(InvalidJobConfiguration, match=r"InstanceType 'm6i.2xlarge' has 32 GiB of memory"):
        run(cloud)  # the pool's configuration: its instance would be launched hibernation-enabled
    with pytest.raises(InvalidJobConfiguration, match=r"InstanceType 'm6i.2xlarge' has 32 GiB of memory"):
        buildspec.pool_build(config.load(), config.load().actions[0], cloud.context)  # the keeper's launches
    # Another type than the pool's: an ephemeral instance, not hibernation-enabled.
    assert run(cloud, InstanceType="m6i.4xlarge")["instance_type"] == "m6i.4xlarge"
    cloud.configure(actions=cloud.action_variables(instance_type="m6i.xlarge"))
    assert run(cloud)["instance_type"] == "m6i.xlarge"


def test_a_hibernating_windows_pool_needs_an_ami_aws_hibernates(cloud: Cloud) -> None:
    old = amazon_ami("Windows_Server-2022-English-Full-Base-2023.08.09", "x86_64", "windows", created="2023-08-09")
    configure_pool(cloud, strategy="stopped", hibernate=True)
    cloud.configure(actions=cloud.action_variables(image_id=old, instance_type="m6i.large", root_volume_size_gib=64))
    with pytest.raises(InvalidJobConfiguration, match=rf"ImageId {old} was created on 2023-08-09: .*2023-09-13"):
        run(cloud)
    configure_pool(cloud, strategy="stopped")  # the same pool, stopped without hibernation
    cloud.configure(actions=cloud.action_variables(image_id=old, instance_type="m6i.large", root_volume_size_gib=64))
    assert run(cloud)["image_id"] == old
