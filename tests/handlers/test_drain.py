"""The drain: the keeper invoked by terraform destroy (aws_lambda_invocation, lifecycle_scope CRUD: the input plus
{"tf": {"action": "delete", "prev_input": <the input>}}) ends every instance of the stack, fails the queued jobs and
empties the registry; an apply's invocation ({"tf": {"action": "create"|"update"}}) runs a normal pass. Against moto's
EC2 and DynamoDB, executions really waiting on their task tokens and the local cloud's SSM Agent."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import ACTION_KEY, REGION, STACK, Agent, Cloud, wait_for
from pool_fixtures import acquired, configure_pool, ec2_state, pool_job, ready_member

from ec2_action import buildspec, config, drain, launcher, pools, queue, registry, tags
from ec2_action.config import ActionType
from ec2_action.handlers import keeper
from emulator import faults

# What the module's aws_lambda_invocation sends (modules/orchestrator/keeper_invocation.tf): its input, with the
# provider's lifecycle key added.
INPUT = {"pools": "0123456789abcdef0123456789abcdef", "launch_template_version": "1"}
DESTROY = {**INPUT, "tf": {"action": "delete", "prev_input": INPUT}}
CREATE = {**INPUT, "tf": {"action": "create", "prev_input": None}}


@pytest.fixture(autouse=True)
def registering(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> Agent:
    """Instances register with Systems Manager at once and stop at once (a keeper pass promotes them)."""
    monkeypatch.setenv("LOCALCLOUD_STOP_DELAY_SECONDS", "0")
    monkeypatch.setenv("LOCALCLOUD_START_DELAY_SECONDS", "0")
    return agent


def pool_config(action: ActionType) -> str:
    settings = config.load()
    return pools.build_config(settings, action, buildspec.pool_build(settings, action))


def run_instance(cloud: Cloud, stack: str, **more_tags: str) -> str:
    """An instance tagged with a stack (and more tags), as a launch by that stack's functions would be."""
    values = {tags.STACK: stack, **more_tags}
    return cloud.client("ec2").run_instances(
        ImageId=cloud.linux_ami,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in values.items()]}],
    )["Instances"][0]["InstanceId"]


def live_instances(cloud: Cloud, stack: str) -> dict[str, str]:
    """The stack's instances that still run or could run again, by id: their state."""
    filters = [
        {"Name": f"tag:{tags.STACK}", "Values": [stack]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ]
    reservations = cloud.client("ec2").describe_instances(Filters=filters)["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def failure_of(cloud: Cloud, execution_arn: str) -> dict[str, str]:
    """The task failure that ended an execution waiting on its token."""
    sfn = cloud.client("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING", what="the execution")
    history = sfn.get_execution_history(executionArn=execution_arn)["events"]
    [failure] = [event["taskFailedEventDetails"] for event in history if "taskFailedEventDetails" in event]
    return {key: failure[key] for key in ("error", "cause")}


def registry_items() -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", region_name=REGION).Table(config.load().pool_table)
    return list(table.scan(ConsistentRead=True)["Items"])


def destroyed(cloud: Cloud) -> dict[str, Any]:
    """The keeper's answer to terraform destroy's invocation."""
    return keeper.handler(json.loads(json.dumps(DESTROY)), cloud.context)


def test_destroy_terminates_every_instance_of_the_stack_fails_the_queue_and_empties_the_registry(
    cloud: Cloud, task_token: Any, quick_ec2: None
) -> None:
    action = configure_pool(cloud, "warm", cap=2)
    building = acquired(cloud, pool_job())["instance"]  # leased to a job whose build runs
    ready = ready_member(cloud)  # idle in the pool
    assert registry.counter(ACTION_KEY).instances == 2  # the cap
    token, execution_arn = task_token("queued-job")  # a job waiting for capacity
    queue.enqueue(action, "queued-job", execution_arn, token, time.time() + 3600, pool_config(action), "warm")
    stray = run_instance(cloud, STACK)  # of the stack, with no record (e.g. a launch whose answer was lost)
    stopped = run_instance(cloud, STACK, **{tags.POOL: ACTION_KEY, tags.MEMBER: "m-000000000000"})
    cloud.client("ec2").stop_instances(InstanceIds=[stopped])
    kept = run_instance(cloud, STACK, **{tags.KEEP: "debugging"})  # nothing would end it after the destroy
    others = [run_instance(cloud, "another-stack"), run_instance(cloud, "another-stack", **{tags.POOL: ACTION_KEY})]
    ours = sorted([ready.instance_id, building["instance_id"], stray, stopped, kept])
    assert sorted(live_instances(cloud, STACK)) == ours

    summary = destroyed(cloud)

    assert live_instances(cloud, STACK) == {}
    assert {ec2_state(cloud, instance_id) for instance_id in ours} == {"terminated"}
    assert summary["terminated"] == ours and summary["shutting_down"] == []
    assert sorted(live_instances(cloud, "another-stack")) == sorted(others)
    assert failure_of(cloud, execution_arn) == {
        "error": "StackDestroyed",
        "cause": f"the module (stack {STACK}) is being destroyed (terraform destroy): its instances are terminated "
        "and its queue emptied, so this job will get no instance",
    }
    assert summary["failed_jobs"] == ["queued-job"] and summary["queue_entries_deleted"] == 1
    assert registry.members(ACTION_KEY) == [] and queue.entries(ACTION_KEY) == []
    assert summary["records_deleted"] == 2
    # What is left is the counter, blocked: nothing takes a slot (and launches) until the table is deleted.
    [counter] = registry_items()
    assert (counter["pool"], counter["id"], counter["queued"]) == (ACTION_KEY, registry.COUNTER_ID, 0)
    assert counter["instances"] > 500 and "drained_at" in counter


def test_after_the_drain_no_job_and_no_keeper_pass_launches(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    configure_pool(cloud, "warm", cap=3, min_ready=1)
    destroyed(cloud)

    queued = acquired(cloud, pool_job())  # a job the poller had started before the destroy
    passed = keeper.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, cloud.context)

    assert queued["queued"] is True and queued["instance"] is None
    assert passed["failed"] == {} and passed["actions"][ACTION_KEY]["launched"] == []
    assert live_instances(cloud, STACK) == {} and registry.members(ACTION_KEY) == []


def test_an_apply_after_a_failed_destroy_gives_the_capacity_back_and_keeps_the_pool(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2, min_ready=1)
    destroyed(cloud)  # then, say, deleting a function failed: the invocation is gone from the state, the rest stays

    applied = keeper.handler(json.loads(json.dumps(CREATE)), cloud.context)  # the invocation is created again

    assert applied["failed"] == {} and len(applied["actions"][ACTION_KEY]["launched"]) == 1
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=1, queued=0)
    [launched] = registry.members(ACTION_KEY)
    assert live_instances(cloud, STACK) == {launched.instance_id: "running"}
    assert "drained_at" not in next(item for item in registry_items() if item["id"] == registry.COUNTER_ID)


def test_an_update_runs_a_pass_at_once(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=3, min_ready=2)  # the apply raised the minimum
    update = {**INPUT, "tf": {"action": "update", "prev_input": {**INPUT, "pools": "an older hash"}}}

    passed = keeper.handler(update, cloud.context)

    assert len(passed["actions"][ACTION_KEY]["launched"]) == 2
    assert len(live_instances(cloud, STACK)) == 2


def test_a_launch_in_flight_when_the_drain_began_is_terminated_once_it_lands(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = configure_pool(cloud, "warm", cap=2)
    # A keeper pass (or an acquire) reserved a slot moments before the drain; its RunInstances has not returned yet.
    reserved = registry.reserve(action, pool_config(action), "warm")
    assert reserved is not None
    build = buildspec.pool_build(config.load(), action)
    looks: list[float] = []

    def launch_lands(seconds: float) -> None:  # while the drain waits, the launch returns and is recorded
        looks.append(seconds)
        if len(looks) == 1:
            instance = launcher.launch(config.load(), None, build, reserved, pool_member=True, action=action)
            registry.launched(reserved, instance)

    monkeypatch.setattr(drain, "pause", launch_lands)

    summary = destroyed(cloud)

    assert len(looks) == 1  # one wait: then its instance was terminated, and nothing else was in flight
    assert live_instances(cloud, STACK) == {}
    [landed] = summary["terminated"]
    assert ec2_state(cloud, landed) == "terminated"
    assert registry.members(ACTION_KEY) == []


def test_a_reservation_older_than_a_launch_takes_is_not_waited_for(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = configure_pool(cloud, "warm", cap=2)
    reserved = registry.reserve(action, pool_config(action), "warm")  # by an invocation that died before launching
    assert reserved is not None
    monkeypatch.setattr(drain, "now", lambda: time.time() + drain.IN_FLIGHT_SECONDS + 1)
    monkeypatch.setattr(drain, "pause", lambda seconds: pytest.fail("the drain waited for a dead reservation"))

    summary = destroyed(cloud)

    assert summary["terminated"] == [] and summary["records_deleted"] == 1
    assert registry.members(ACTION_KEY) == []


def test_without_the_registry_table_the_instances_are_still_terminated(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2)
    member = ready_member(cloud)
    cloud.client("dynamodb").delete_table(TableName=config.load().pool_table)

    summary = destroyed(cloud)

    assert summary["terminated"] == [member.instance_id] and summary["blocked"] == []
    assert live_instances(cloud, STACK) == {}


def test_a_registry_error_is_raised_once_the_instances_are_terminated(cloud: Cloud, task_token: Any) -> None:
    """The destroy must fail (and be run again) rather than go on with a queue it could not empty; the instances are
    ended first all the same."""
    action = configure_pool(cloud, "warm", cap=1)
    member = ready_member(cloud)
    token, execution_arn = task_token("queued-job")
    queue.enqueue(action, "queued-job", execution_arn, token, time.time() + 3600, pool_config(action), "warm")
    faults.inject_api_error(
        "stepfunctions", "SendTaskFailure", "KmsAccessDeniedException", "the key of the state machine is not usable"
    )

    with pytest.raises(ClientError, match="KmsAccessDeniedException"):
        destroyed(cloud)

    assert live_instances(cloud, STACK) == {} and ec2_state(cloud, member.instance_id) == "terminated"
    assert registry.members(ACTION_KEY) == []
    assert [entry.job_id for entry in queue.entries(ACTION_KEY)] == ["queued-job"]  # for the destroy run again

    summary = destroyed(cloud)

    assert summary["failed_jobs"] == ["queued-job"] and queue.entries(ACTION_KEY) == []
    assert failure_of(cloud, execution_arn)["error"] == "StackDestroyed"


def test_the_drain_answers_with_instances_still_shutting_down_when_its_time_runs_out(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 takes about a minute to terminate; the drain waits while the invocation has time, then answers (the
    instances are on their way: the destroy goes on)."""
    configure_pool(cloud, "warm", cap=2)
    member = ready_member(cloud)
    real_find = drain.instances.find
    terminated: set[str] = set()

    def shutting_down_for_a_while(stack: str) -> list[dict[str, Any]]:  # EC2 still shows the instance shutting down
        found = real_find(stack, states=(*drain.TO_TERMINATE, "shutting-down", "terminated"))
        for instance in found:
            if instance["State"]["Name"] == "terminated":
                terminated.add(instance["InstanceId"])
                instance["State"] = {"Code": 32, "Name": "shutting-down"}
        return found

    monkeypatch.setattr(drain.instances, "find", shutting_down_for_a_while)
    clock = [time.time()]
    monkeypatch.setattr(drain, "now", lambda: clock[0])
    looks: list[float] = []

    def wait(seconds: float) -> None:
        looks.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(drain, "pause", wait)
    cloud.context.remaining_ms = int((drain.MARGIN_SECONDS + 3 * drain.POLL_SECONDS + 1) * 1000)

    summary = destroyed(cloud)

    assert summary["terminated"] == [member.instance_id] == sorted(terminated)
    assert summary["shutting_down"] == [member.instance_id]
    assert len(looks) == 3  # every POLL_SECONDS while the invocation had time


def test_only_terraform_destroy_drains() -> None:
    assert drain.requested(DESTROY)
    assert not drain.requested(CREATE) and drain.applied(CREATE)
    assert not drain.requested({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    assert not drain.requested({"action": ACTION_KEY}) and not drain.applied({"action": ACTION_KEY})  # a nudge
    assert not drain.requested(None) and not drain.requested({"tf": "delete"})
