"""acquire (AcquireInstance): the job validated (tests/handlers/test_buildspec.py has every rule), then its instance
launched; the output is the state machine's `job`, `build` and `instance`."""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import STACK, Agent, Cloud, build_spec, make_job, wait_for
from pool_fixtures import acquired as pool_acquired
from pool_fixtures import configure_pool, ec2_state, pool_job, ready_member, released

from ec2_action import buildspec, config, errors, jobs, launcher, pools, queue, registry
from ec2_action.errors import (
    CapacityTimeout,
    InstanceLaunchFailed,
    InvalidJobConfiguration,
    LaunchThrottled,
    NoCapacity,
)
from ec2_action.handlers import acquire, enqueue
from emulator import faults
from emulator.ssm.agent import AGENT_VERSION
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
    assert set(instance) == {"instance_id", "subnet_id", "launched_at", "launched_epoch", "instance_type",
                             "lifecycle", "member_id", "pool", "kind", "boot", "acquire_seconds"}  # fmt: skip
    assert (instance["pool"], instance["kind"], instance["boot"]) == ("build", "ephemeral", "launch")
    assert (instance["instance_type"], instance["lifecycle"]) == ("t3.large", "on-demand")
    assert before <= instance["launched_epoch"] <= after + 0.001  # rounded to milliseconds
    # CreateFleet returns no LaunchTime: acquire's clock, when CreateFleet returned.
    assert before <= datetime.fromisoformat(instance["launched_at"]).timestamp() <= after
    described = describe(cloud, instance["instance_id"])
    assert "InstanceLifecycle" not in described  # on-demand
    assert described["SubnetId"] == instance["subnet_id"]
    assert "instance_id" not in cloud.item(job["id"])  # acquire writes nothing to the jobs table


def test_an_invalid_job_launches_nothing(cloud: Cloud) -> None:
    with pytest.raises(InvalidJobConfiguration, match=r"ImageId ami-0123456789abcdef0 does not exist"):
        acquired(cloud, linux_job(cloud, ImageId="ami-0123456789abcdef0"))
    assert cloud.client("ec2").describe_instances()["Reservations"] == []


def test_a_type_that_is_not_allowed_launches_nothing(cloud: Cloud) -> None:
    with pytest.raises(InvalidJobConfiguration, match=r"InstanceType 'p5.48xlarge' is not allowed"):
        acquired(cloud, linux_job(cloud, InstanceType="t3.large,p5.48xlarge"))
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
    assert tags["Name"] == f"{STACK}-app-{job['id'][:8]}"
    assert instance["InstanceType"] == "t3.large"
    assert instance["ImageId"] == cloud.linux_ami
    assert instance["SubnetId"] == result["subnet_id"] in cloud.settings["subnet_ids"]
    assert "PublicIpAddress" not in instance
    assert instance["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{STACK}-builder")  # the template's

    ec2 = cloud.client("ec2")
    root = next(m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sda1")
    volume = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Encrypted"], volume["Size"], volume["VolumeType"]) == (True, 40, "gp3")


def test_the_deadline_tag_is_when_the_template_shuts_the_instance_down(cloud: Cloud) -> None:
    """The launch template's user data reads the deadline tag: the build's timeout, the registration window and a
    grace period after the launch. A pool member has none (tests below)."""
    before = datetime.now(UTC)
    result = launch(cloud, linux_job(cloud, TimeoutMinutes="60"))  # a task timeout of 3600 + 900 seconds
    tags = {tag["Key"]: tag["Value"] for tag in describe(cloud, result["instance_id"])["Tags"]}
    deadline = datetime.strptime(tags["ec2-action:deadline"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    minutes = (900 + 4500) // 60 + acquire.SHUTDOWN_GRACE_MINUTES
    assert before.replace(microsecond=0) + timedelta(minutes=minutes) <= deadline
    assert deadline <= datetime.now(UTC) + timedelta(minutes=minutes)


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
    registry.table().update_item(  # as if the first invocation died after CreateFleet, before recording it
        Key={"pool": "build", "id": first["member_id"]},
        UpdateExpression="SET #state = :reserved REMOVE instance_id",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":reserved": "reserved"},
    )
    second = acquire.handler({"job": job, "execution_arn": "arn"}, cloud.context)["instance"]
    assert second["instance_id"] == first["instance_id"]  # CreateFleet answered the token with its first answer
    reservations = cloud.client("ec2").describe_instances()["Reservations"]
    assert [i["InstanceId"] for r in reservations for i in r["Instances"]] == [first["instance_id"]]


def zone_of(cloud: Cloud, subnet_id: str) -> str:
    return cloud.client("ec2").describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["AvailabilityZone"]


def test_a_pool_without_capacity_moves_the_launch_to_the_next_subnet(cloud: Cloud) -> None:
    job = linux_job(cloud)
    order = acquire.subnet_rotation(tuple(cloud.settings["subnet_ids"]), job["id"])
    faults.fleet_capacity(instance_type="t3.large", zone=zone_of(cloud, order[0]), available=0)
    result = launch(cloud, job)
    assert result["subnet_id"] == order[1]
    assert describe(cloud, result["instance_id"])["SubnetId"] == order[1]


def test_the_types_are_tried_in_their_order_in_every_subnet_before_the_next_type(cloud: Cloud) -> None:
    job = linux_job(cloud, InstanceType="t3.large, m6i.large, t3.xlarge")
    order = acquire.subnet_rotation(tuple(cloud.settings["subnet_ids"]), job["id"])
    faults.fleet_capacity(instance_type="t3.large", available=0)  # the first choice nowhere
    faults.fleet_capacity(instance_type="m6i.large", zone=zone_of(cloud, order[0]), available=0)

    result = launch(cloud, job)

    assert (result["instance_type"], result["subnet_id"]) == ("m6i.large", order[1])
    described = describe(cloud, result["instance_id"])
    assert (described["InstanceType"], described["SubnetId"]) == ("m6i.large", order[1])


def test_no_capacity_anywhere_names_every_pool_tried(cloud: Cloud) -> None:
    job = linux_job(cloud, InstanceType="t3.large,m6i.large")
    faults.fleet_capacity(available=0)
    with pytest.raises(NoCapacity) as raised:
        launch(cloud, job)
    message = str(raised.value)
    assert message.startswith("no capacity for on-demand in any of 6 pools tried: t3.large in subnet-")
    order = acquire.subnet_rotation(tuple(cloud.settings["subnet_ids"]), job["id"])
    named = re.findall(r"(\S+) in (subnet-\w+) \((\w+): ", message)
    assert named == [(t, s, "InsufficientInstanceCapacity") for t in ("t3.large", "m6i.large") for s in order]
    assert cloud.client("ec2").describe_instances()["Reservations"] == []


def test_a_launch_without_capacity_is_retried_as_a_new_request(cloud: Cloud) -> None:
    """CreateFleet answers a client token it has seen with its first answer: the state machine's retry after
    NoCapacity asks anew (the member counts its failed launches), and gets an instance once there is capacity."""
    job = linux_job(cloud)
    faults.fleet_capacity(available=0)
    with pytest.raises(NoCapacity):
        acquired(cloud, job)
    faults.fleet_capacity(available=None)

    instance = launch(cloud, job)

    assert describe(cloud, instance["instance_id"])["State"]["Name"] in ("pending", "running")
    assert registry.counter("build").instances == 1  # the same slot


def test_other_launch_errors_carry_the_aws_message(cloud: Cloud) -> None:
    faults.inject_api_error("ec2", "CreateFleet", "UnauthorizedOperation", "not allowed to use this AMI", status=403)
    with pytest.raises(InstanceLaunchFailed, match=r"CreateFleet: UnauthorizedOperation: not allowed to use this AMI"):
        launch(cloud, linux_job(cloud))


def test_an_error_of_the_pools_that_is_not_capacity_fails_the_launch_with_its_code_and_the_pools(cloud: Cloud) -> None:
    """A launch template version that does not exist: EC2 answers each override with the error, no instance."""
    templates = cloud.variables["launch_templates"]
    cloud.configure(launch_templates={**templates, "Linux": {**templates["Linux"], "version": "7"}})
    with pytest.raises(InstanceLaunchFailed) as raised:
        launch(cloud, linux_job(cloud))
    message = str(raised.value)
    assert message.startswith("CreateFleet: InvalidLaunchTemplateId.VersionNotFound: ")
    assert message.count("on-demand t3.large in subnet-") == 3  # the pools tried
    assert cloud.client("ec2").describe_instances()["Reservations"] == []


def test_throttled_pools_are_retried_and_other_errors_are_not() -> None:
    """The classification of a fleet answer without an instance (launcher): capacity errors alone go on (the next
    purchase option, or NoCapacity); a throttled pool is LaunchThrottled; any other error InstanceLaunchFailed."""
    capacity = launcher.PoolTried("t3.large", "subnet-a", "spot", "InsufficientInstanceCapacity", "none")
    throttled = launcher.PoolTried("t3.large", "subnet-b", "spot", "RequestLimitExceeded", "slow down")
    refused = launcher.PoolTried("t3.large", "subnet-c", "spot", "InvalidParameterValue", "no such type")
    launcher._raise_unless_capacity([capacity], [capacity])
    with pytest.raises(LaunchThrottled, match=r"^CreateFleet: RequestLimitExceeded: slow down$"):
        launcher._raise_unless_capacity([capacity, throttled], [capacity, throttled])
    with pytest.raises(InstanceLaunchFailed, match=r"^CreateFleet: InvalidParameterValue: no such type \(pools tried"):
        launcher._raise_unless_capacity([throttled, refused], [throttled, refused])


def test_a_launch_throttled_beyond_the_sdk_retries_is_retried_by_the_state_machine_without_a_second_instance(
    cloud: Cloud,
) -> None:
    """RequestLimitExceeded on every attempt botocore makes: LaunchThrottled (the state machine retries it with
    backoff), not InstanceLaunchFailed (never retried). The job keeps its slot, and the retry launches once."""
    job = linux_job(cloud)
    faults.inject_api_error(
        "ec2", "CreateFleet", "RequestLimitExceeded", "Request limit exceeded.", times=SDK_ATTEMPTS, status=503
    )
    with pytest.raises(LaunchThrottled, match=r"CreateFleet: RequestLimitExceeded: Request limit exceeded\."):
        acquired(cloud, job)
    assert cloud.client("ec2").describe_instances()["Reservations"] == []
    instance = launch(cloud, job)  # the state machine's retry
    assert registry.counter("build").instances == 1
    reservations = cloud.client("ec2").describe_instances()["Reservations"]
    assert [i["InstanceId"] for r in reservations for i in r["Instances"]] == [instance["instance_id"]]


# --- purchase options: spot, and spot then on-demand (DESIGN.md, "Spot and capacity fallback") ---------------------


def configure_purchase(cloud: Cloud, purchase: str, **action: Any) -> config.ActionType:
    cloud.configure(actions=cloud.action_variables(purchase_option=purchase, **action))
    found = config.load().action(make_job()["action"])
    assert found is not None
    return found


def test_a_spot_action_launches_a_spot_instance(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot")
    instance = launch(cloud, linux_job(cloud))
    assert instance["lifecycle"] == "spot"
    described = describe(cloud, instance["instance_id"])
    assert described["InstanceLifecycle"] == "spot" and described["SpotInstanceRequestId"]


def test_spot_then_on_demand_asks_for_on_demand_at_once_when_no_spot_pool_has_capacity(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot-then-on-demand", instance_types=["m6i.large"])
    faults.fleet_capacity(lifecycle="spot", available=0)

    instance = launch(cloud, linux_job(cloud))

    assert (instance["lifecycle"], instance["instance_type"]) == ("on-demand", "t3.large")  # the first type
    assert "InstanceLifecycle" not in describe(cloud, instance["instance_id"])


def test_spot_alone_without_spot_capacity_names_every_spot_pool(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot")
    faults.fleet_capacity(lifecycle="spot", available=0)
    with pytest.raises(NoCapacity, match=r"^no capacity for spot in any of 3 pools tried: t3.large in subnet-"):
        launch(cloud, linux_job(cloud))
    assert cloud.client("ec2").describe_instances()["Reservations"] == []


def test_spot_then_on_demand_without_any_capacity_names_the_pools_of_both(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot-then-on-demand")
    faults.fleet_capacity(available=0)
    with pytest.raises(NoCapacity) as raised:
        launch(cloud, linux_job(cloud))
    message = str(raised.value)
    assert message.startswith("no capacity for spot-then-on-demand in any of 6 pools tried: spot t3.large in subnet-")
    assert message.count("spot t3.large in subnet-") == 3 and message.count("on-demand t3.large in subnet-") == 3


@pytest.mark.parametrize(
    ("purchase", "interruptions", "expected"),
    [
        ("on-demand", 0, "on-demand"),
        ("spot", 0, "spot"),
        ("spot", 1, "spot"),
        ("spot", 2, "on-demand"),  # the budget (interruptions_before_on_demand 2) is spent
        ("spot-then-on-demand", 1, "spot-then-on-demand"),
        ("spot-then-on-demand", 5, "on-demand"),
    ],
)
def test_purchase_for_moves_to_on_demand_once_the_interruption_budget_is_spent(
    cloud: Cloud, purchase: str, interruptions: int, expected: str
) -> None:
    action = configure_purchase(cloud, purchase)
    assert launcher.purchase_for(action, interruptions) == expected


def test_a_budget_of_zero_never_buys_spot(cloud: Cloud) -> None:
    """interruptions_before_on_demand 0: zero interruptions move a build to on-demand, its first launch included."""
    action = configure_purchase(cloud, "spot", interruptions_before_on_demand=0)
    assert launcher.purchase_for(action, 0) == "on-demand"
    assert launch(cloud, linux_job(cloud))["lifecycle"] == "on-demand"


def test_a_start_throttled_beyond_the_sdk_retries_is_retried_by_the_state_machine(
    cloud: Cloud, quick_ec2: None
) -> None:
    configure_pool(cloud, "stopped", cap=1)
    member = ready_member(cloud)
    faults.inject_api_error(
        "ec2", "StartInstances", "RequestLimitExceeded", "Request limit exceeded.", times=SDK_ATTEMPTS, status=503
    )
    with pytest.raises(LaunchThrottled, match=r"StartInstances: RequestLimitExceeded"):
        pool_acquired(cloud, pool_job())
    assert ec2_state(cloud, member.instance_id) == "stopped"


# --- capacity: pools, the cap, the queue (DESIGN.md, "Instance pools") ----------------------------------------------


def test_a_warm_member_is_leased_as_it_is(cloud: Cloud, agent: Agent, quick_ec2: None) -> None:
    configure_pool(cloud, "warm", cap=1)
    member = ready_member(cloud)
    before = time.time()

    output = pool_acquired(cloud, pool_job())

    instance = output["instance"]
    assert (instance["member_id"], instance["instance_id"]) == (member.id, member.instance_id)
    assert (instance["kind"], instance["boot"], instance["pool"]) == ("warm", "ready", "build")
    assert instance["launched_epoch"] >= before  # the registration wait runs from the lease, not the old launch
    # Found Online as it was leased (one DescribeInstanceInformation): wait_online asks nothing more.
    assert (instance["online_checked"], instance["platform_type"], instance["agent_version"]) == (
        True,
        "Linux",
        AGENT_VERSION,
    )
    leased = registry.member("build", member.id)
    assert (leased.state, leased.lease_job) == ("leased", output["job"]["id"])
    assert ec2_state(cloud, member.instance_id) == "running"
    assert registry.counter("build").instances == 1  # no new instance


def test_a_stopped_member_is_started(cloud: Cloud, quick_ec2: None) -> None:
    configure_pool(cloud, "stopped", cap=1)
    member = ready_member(cloud)
    assert ec2_state(cloud, member.instance_id) == "stopped"

    instance = pool_acquired(cloud, pool_job())["instance"]

    assert (instance["member_id"], instance["instance_id"], instance["boot"]) == (
        member.id,
        member.instance_id,
        "start",
    )
    assert wait_for(lambda: ec2_state(cloud, member.instance_id) == "running", what="the start")


def test_a_stopped_member_ec2_cannot_start_is_replaced_by_a_fresh_launch(cloud: Cloud, quick_ec2: None) -> None:
    configure_pool(cloud, "stopped", cap=1)
    member = ready_member(cloud)
    # EC2 answers InsufficientInstanceCapacity with HTTP 500, which the SDK retries: one call fails on every attempt.
    faults.inject_api_error(
        "ec2", "StartInstances", "InsufficientInstanceCapacity", "no t3.large here", times=SDK_ATTEMPTS, status=500
    )

    instance = pool_acquired(cloud, pool_job())["instance"]

    assert instance["member_id"] == member.id and instance["boot"] == "launch"  # same member, same slot
    assert instance["instance_id"] != member.instance_id
    assert ec2_state(cloud, member.instance_id) in ("shutting-down", "terminated")
    replaced = registry.member("build", member.id)
    assert (replaced.instance_id, replaced.state) == (instance["instance_id"], "launching")
    assert registry.counter("build").instances == 1


def warnings(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The WARNING lines the function logged since the last read."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("level") == "WARNING"]


def assert_replaced(cloud: Cloud, member: registry.Member, instance: dict[str, Any]) -> None:
    """The job got the same member (its slot) with a fresh instance; the old one is terminated, the cap unchanged."""
    assert instance["member_id"] == member.id and instance["boot"] == "launch" and "online_checked" not in instance
    assert instance["instance_id"] != member.instance_id
    assert ec2_state(cloud, member.instance_id) == "terminated"
    assert ec2_state(cloud, instance["instance_id"]) in ("pending", "running")
    replaced = registry.member("build", member.id)
    assert (replaced.instance_id, replaced.state) == (instance["instance_id"], "launching")
    assert replaced.lease_job is not None and registry.counter("build").instances == 1


@pytest.mark.parametrize("behind_our_back", ["terminate_instances", "stop_instances"])
def test_a_ready_warm_member_whose_instance_is_gone_or_stopped_is_replaced_by_a_fresh_launch(
    cloud: Cloud, agent: Agent, quick_ec2: None, capsys: pytest.CaptureFixture[str], behind_our_back: str
) -> None:
    """Terminated or stopped behind the pool's back before the keeper's next pass: the job that leased it does not
    fail in WaitForSsmOnline, it gets a fresh instance in the same member."""
    configure_pool(cloud, "warm", cap=1)
    member = ready_member(cloud)
    getattr(cloud.client("ec2"), behind_our_back)(InstanceIds=[member.instance_id])
    capsys.readouterr()

    instance = pool_acquired(cloud, pool_job())["instance"]

    assert_replaced(cloud, member, instance)
    status = "not registered" if behind_our_back == "terminate_instances" else "ConnectionLost"
    [warning] = warnings(capsys)
    assert warning["reason"] == f"its instance is not Online in Systems Manager ({status})"
    assert (warning["member_id"], warning["instance_id"]) == (member.id, member.instance_id)


def test_a_ready_warm_member_whose_agent_is_not_online_is_replaced(cloud: Cloud, agent: Agent) -> None:
    configure_pool(cloud, "warm", cap=1)
    member = ready_member(cloud)
    faults.never_register(lambda instance: instance.id == member.instance_id)  # its agent is gone, it still runs

    instance = pool_acquired(cloud, pool_job())["instance"]

    assert_replaced(cloud, member, instance)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("IncorrectInstanceState", None),  # terminated behind the pool's back: EC2's own answer (the local cloud's)
        ("InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"),  # long gone
    ],
)
def test_a_stopped_member_ec2_cannot_start_because_it_is_gone_is_replaced_by_a_fresh_launch(
    cloud: Cloud, quick_ec2: None, capsys: pytest.CaptureFixture[str], code: str, message: str | None
) -> None:
    configure_pool(cloud, "stopped", cap=1)
    member = ready_member(cloud)
    if message is None:
        cloud.client("ec2").terminate_instances(InstanceIds=[member.instance_id])
    else:  # EC2 forgets a terminated instance after about an hour: neither a start nor a terminate finds it
        cloud.client("ec2").terminate_instances(InstanceIds=[member.instance_id])
        faults.inject_api_error("ec2", "StartInstances", code, message)
        faults.inject_api_error("ec2", "TerminateInstances", code, message)
    capsys.readouterr()

    instance = pool_acquired(cloud, pool_job())["instance"]

    assert_replaced(cloud, member, instance)
    [warning] = warnings(capsys)
    assert warning["reason"].startswith(f"StartInstances failed: {code}: ")


def test_another_start_error_fails_the_acquire(cloud: Cloud, quick_ec2: None) -> None:
    """Only a start that can never succeed is replaced: anything else goes to the state machine's Retry."""
    configure_pool(cloud, "stopped", cap=1)
    member = ready_member(cloud)
    faults.inject_api_error("ec2", "StartInstances", "UnauthorizedOperation", "not allowed")

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        pool_acquired(cloud, pool_job())

    assert ec2_state(cloud, member.instance_id) == "stopped"
    assert registry.member("build", member.id).instance_id == member.instance_id


def test_a_pool_member_is_tagged_for_the_pool_not_the_job_and_never_shuts_itself_down(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=1)
    instance = pool_acquired(cloud, pool_job())["instance"]
    described = describe(cloud, instance["instance_id"])
    tags = {tag["Key"]: tag["Value"] for tag in described["Tags"] if not tag["Key"].startswith("aws:")}
    assert tags == {"ec2-action:stack": STACK, "ec2-action:pool": "build", "ec2-action:member": instance["member_id"],
                    "Name": f"{STACK}-build-{instance['member_id']}"}  # fmt: skip
    attribute = cloud.client("ec2").describe_instance_attribute(
        InstanceId=instance["instance_id"], Attribute="userData"
    )
    assert "Value" not in attribute["UserData"]


def test_a_hibernating_pools_member_is_launched_ready_to_hibernate(cloud: Cloud) -> None:
    configure_pool(cloud, "stopped", cap=1, hibernate=True)
    instance = pool_acquired(cloud, pool_job())["instance"]
    assert describe(cloud, instance["instance_id"])["HibernationOptions"] == {"Configured": True}


def test_a_job_not_matching_the_pool_runs_on_an_ephemeral_member_under_the_same_cap(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2)
    ready = ready_member(cloud)

    instance = pool_acquired(cloud, pool_job(InstanceType="m6i.large"))["instance"]

    assert instance["kind"] == "ephemeral" and instance["member_id"] != ready.id  # the ready member is not its size
    assert describe(cloud, instance["instance_id"])["InstanceType"] == "m6i.large"
    tags = {tag["Key"]: tag["Value"] for tag in describe(cloud, instance["instance_id"])["Tags"]}
    assert tags["ec2-action:pool"] == "build" and "ec2-action:job-id" in tags
    assert registry.counter("build").instances == 2
    assert pool_acquired(cloud, pool_job(InstanceType="m6i.large"))["queued"] is True  # the cap counts it


def test_at_the_cap_the_job_queues_without_an_instance_or_an_entry(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=1)
    pool_acquired(cloud, pool_job())
    launched = cloud.client("ec2").describe_instances()["Reservations"]

    output = pool_acquired(cloud, pool_job())

    assert output["queued"] is True and output["instance"] is None
    assert output["build"]["instance_type"] == "t3.large"  # validated: WaitForCapacity passes it on
    assert cloud.client("ec2").describe_instances()["Reservations"] == launched
    assert queue.entries("build") == []  # WaitForCapacity writes the entry, with its token


def test_a_queued_job_takes_its_grant_and_the_wait_shortens_its_timeout(
    cloud: Cloud, agent: Agent, quick_ec2: None, task_token: Any
) -> None:
    configure_pool(cloud, "warm", cap=1)
    running = pool_acquired(cloud, pool_job())
    waiting_job = pool_job()
    waiting = pool_acquired(cloud, waiting_job)
    assert waiting["queued"] is True
    token, execution_arn = task_token(waiting_job["id"])
    enqueue.handler({"task_token": token, "job": waiting_job, "build": waiting["build"],
                     "execution_arn": execution_arn}, cloud.context)  # fmt: skip
    time.sleep(2)  # the wait for capacity, as the grant reports it

    released(cloud, running)  # returns the member and serves the queue
    grant = json.loads(wait_for(lambda: execution_output(cloud, execution_arn), what="the grant"))
    assert grant["member_id"] == running["instance"]["member_id"] and grant["waited_seconds"] >= 2
    output = pool_acquired(cloud, waiting_job, {**waiting, "grant": grant})

    assert output["queued"] is False and output["grant"] == grant
    assert output["instance"]["member_id"] == grant["member_id"] and output["instance"]["boot"] == "ready"
    build = output["build"]
    assert build["task_timeout_seconds"] == waiting["build"]["task_timeout_seconds"] - grant["waited_seconds"]
    assert build["command_timeout_seconds"] == build["task_timeout_seconds"] - 900
    member = registry.member("build", grant["member_id"])
    assert member.lease_job == waiting_job["id"] and member.grant_token is None  # picked up: never resent


def test_a_grant_after_the_whole_timeout_fails_with_capacity_timeout_and_gives_the_member_back(
    cloud: Cloud, quick_ec2: None
) -> None:
    action = configure_pool(cloud, "warm", cap=1)
    member = ready_member(cloud)
    job = pool_job()
    queued_state = {"job": job, "build": buildspec.validated(config.load(), job, cloud.context), "queued": True,
                    "instance": None}  # fmt: skip
    entry = queue.enqueue(action, job["id"], "arn", "token", deadline=time.time() + 60, config=member.config,
                          kind="warm")  # fmt: skip
    assert queue._grant(config.load(), action, entry)[0] == queue.GRANTED  # the ready member, leased to the job
    waited = queued_state["build"]["task_timeout_seconds"] - 600  # less than the artifact transfer's time is left

    with pytest.raises(CapacityTimeout, match=r"waited \d+ minutes for capacity: action build allows 1 concurrent"):
        pool_acquired(cloud, job, {**queued_state, "grant": {"member_id": member.id, "waited_seconds": waited}})

    back = registry.member("build", member.id)
    assert (back.state, back.lease_job) == ("ready", None)


def test_a_retried_acquire_takes_the_member_it_already_holds(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2)
    job = pool_job()
    first = pool_acquired(cloud, job)["instance"]
    second = pool_acquired(cloud, job)["instance"]
    assert (second["member_id"], second["instance_id"]) == (first["member_id"], first["instance_id"])
    assert registry.counter("build").instances == 1


def execution_output(cloud: Cloud, arn: str) -> str | None:
    described = cloud.client("stepfunctions").describe_execution(executionArn=arn)
    return described.get("output") if described["status"] != "RUNNING" else None


def test_a_matching_jobs_configuration_is_the_one_the_keeper_launches_the_pool_with(cloud: Cloud) -> None:
    """acquire hashes the job's build spec, release the action's defaults, the keeper buildspec.pool_build's spec:
    for a job that sets no instance property, all three are the pool's configuration."""
    action = configure_pool(cloud, "stopped", cap=1, hibernate=True)
    settings = config.load()
    build = pool_acquired(cloud, pool_job())["build"]
    kept = buildspec.pool_build(settings, action, cloud.context)

    assert pools.build_config(settings, action, build) == pools.build_config(settings, action, kept)
    assert pools.build_config(settings, action, build) == pools.pool_config(settings, action, build["root_volume_gib"])
    bigger = buildspec.validated(settings, pool_job(RootVolumeGiB="60"), cloud.context)
    assert pools.build_config(settings, action, bigger) != pools.build_config(settings, action, build)


# --- a spot interruption: the build restarts in the same execution (DESIGN.md, "Interruption -> transparent restart")


def interrupted(cloud: Cloud, output: dict[str, Any], step: str | None = "RunBuildCommand", **state: Any) -> dict:
    """The state AcquireInstance gets back after EC2 reclaimed the output's spot instance: the caught SpotInterrupted
    in $.interrupted (the interruption function's cause, when `step` is given; else a Lambda error's without a step),
    the lost instance still in $.instance."""
    instance_id = output["instance"]["instance_id"]
    faults.interrupt_spot(instance_id, warning=False, notice_seconds=0)
    wait_for(lambda: ec2_state(cloud, instance_id) == "terminated", what="the spot instance reclaimed")
    if step is None:
        cause = json.dumps(
            {"errorMessage": f"spot instance {instance_id} was reclaimed", "errorType": "SpotInterrupted"}
        )
    else:
        cause = errors.interruption_cause(instance_id, "Server.SpotInstanceTermination", "2026-12-03T10:00:00Z", step)
    return {**output, **state, "interrupted": {"Error": "SpotInterrupted", "Cause": cause}}


def test_an_interrupted_build_gets_a_fresh_spot_instance_in_the_member_it_holds(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot")
    job = linux_job(cloud)
    first = acquired(cloud, job)
    lost = first["instance"]

    output = pool_acquired(cloud, job, interrupted(cloud, first, ssm={"online": True}))

    assert set(output) == {"job", "build", "instance", "queued", "attempt"}  # no grant, no interrupted
    assert output["queued"] is False and output["build"] == first["build"]
    instance = output["instance"]
    assert (instance["member_id"], instance["kind"], instance["boot"]) == (lost["member_id"], "ephemeral", "launch")
    assert instance["instance_id"] != lost["instance_id"] and instance["lifecycle"] == "spot"
    assert describe(cloud, instance["instance_id"])["InstanceLifecycle"] == "spot"
    assert output["attempt"] == {
        "interruptions": 1,
        "history": [{"instance_id": lost["instance_id"], "instance_type": "t3.large", "lifecycle": "spot",
                     "step": "RunBuildCommand", "at": "2026-12-03T10:00:00Z"}],
    }  # fmt: skip
    member = registry.member("build", lost["member_id"])
    assert (member.instance_id, member.lease_job, member.lifecycle) == (instance["instance_id"], job["id"], "spot")
    assert registry.counter("build").instances == 1  # the job kept its slot: nothing queued, nothing more taken


def test_the_build_goes_on_demand_once_the_interruption_budget_is_spent(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot")  # interruptions_before_on_demand: 2
    job = linux_job(cloud)
    first = acquired(cloud, job)
    second = pool_acquired(cloud, job, interrupted(cloud, first, step="WaitForSsmOnline"))
    assert second["instance"]["lifecycle"] == "spot"

    third = pool_acquired(cloud, job, interrupted(cloud, second, step=None))  # the attempt is carried on

    assert third["instance"]["lifecycle"] == "on-demand"
    assert "InstanceLifecycle" not in describe(cloud, third["instance"]["instance_id"])
    assert third["attempt"]["interruptions"] == 2
    history = third["attempt"]["history"]
    assert [(h["instance_id"], h["step"]) for h in history] == [
        (first["instance"]["instance_id"], "WaitForSsmOnline"),
        (second["instance"]["instance_id"], "WaitForSsmOnline"),  # no step in the cause, WaitForSsmOnline not done
    ]
    assert len({first["instance"]["member_id"], second["instance"]["member_id"], third["instance"]["member_id"]}) == 1


def test_a_budget_of_one_restarts_on_demand_after_the_first_interruption(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot-then-on-demand", interruptions_before_on_demand=1)
    job = linux_job(cloud)
    first = acquired(cloud, job)
    assert first["instance"]["lifecycle"] == "spot"
    assert pool_acquired(cloud, job, interrupted(cloud, first))["instance"]["lifecycle"] == "on-demand"


def test_interruptions_beyond_the_bound_fail_the_build_without_a_launch(cloud: Cloud) -> None:
    """On-demand after the budget is never interrupted; the bound (budget + 2) ends a loop that would not."""
    configure_purchase(cloud, "spot", interruptions_before_on_demand=1)
    job = linux_job(cloud)
    first = acquired(cloud, job)
    state = interrupted(cloud, first, attempt={"interruptions": 3, "history": []})
    launched = cloud.client("ec2").describe_instances()["Reservations"]

    with pytest.raises(InstanceLaunchFailed, match=r"interrupted 4 times \(at most 3 restarts\)"):
        pool_acquired(cloud, job, state)

    assert cloud.client("ec2").describe_instances()["Reservations"] == launched


def test_a_retried_restart_hands_over_the_instance_it_launched(cloud: Cloud) -> None:
    configure_purchase(cloud, "spot")
    job = linux_job(cloud)
    state = interrupted(cloud, acquired(cloud, job))
    first = pool_acquired(cloud, job, state)
    again = pool_acquired(cloud, job, state)  # the same input: Step Functions' retry of the invocation
    assert again["instance"]["instance_id"] == first["instance"]["instance_id"]
    assert again["attempt"] == first["attempt"]
    running = [i for r in cloud.client("ec2").describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]  # fmt: skip
    assert [i["InstanceId"] for i in running] == [first["instance"]["instance_id"]]


def test_a_restart_takes_the_build_spec_as_it_was(cloud: Cloud) -> None:
    """The wait for capacity was taken off when the job first got its instance: no validation, no second cut."""
    configure_purchase(cloud, "spot")
    job = linux_job(cloud)
    first = acquired(cloud, job)
    shortened = {**first["build"], "task_timeout_seconds": 1000, "command_timeout_seconds": 100}
    output = pool_acquired(cloud, job, interrupted(cloud, {**first, "build": shortened}, grant=None))
    assert output["build"] == shortened


def test_an_interrupted_warm_pool_member_is_replaced_in_the_same_member(cloud: Cloud, agent: Agent) -> None:
    configure_pool(cloud, "warm", cap=1)
    configure_purchase(cloud, "spot", strategy="warm", max_concurrent_builds=1, pool={"min_ready": 0})
    job = pool_job()
    first = pool_acquired(cloud, job)
    assert (first["instance"]["kind"], first["instance"]["lifecycle"]) == ("warm", "spot")

    output = pool_acquired(cloud, job, interrupted(cloud, first))

    assert output["instance"]["member_id"] == first["instance"]["member_id"]
    assert output["instance"]["kind"] == "warm" and output["instance"]["lifecycle"] == "spot"
    assert registry.counter("build").instances == 1
