"""keeper: passes at chosen times against moto's EC2 and DynamoDB, the local cloud's SSM Agent (an instance launched
with the stack's launch template registers at once) and executions really waiting on their task tokens; what the
registry, EC2, the queued executions and the metrics show after each pass."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import ACTION, ACTION_KEY, Agent, Cloud, wait_for

from ec2_action import aws, buildspec, config, pools, queue, registry, tags
from ec2_action.config import ActionType
from ec2_action.handlers import keeper
from ec2_action.registry import Member
from emulator import faults

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@pytest.fixture(autouse=True)
def registering(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> Agent:
    """The local cloud's agent, registering every instance launched with the stack's instance profile at once; EC2
    stops an instance at once too."""
    monkeypatch.setenv("LOCALCLOUD_STOP_DELAY_SECONDS", "0")
    return agent


def pool(cloud: Cloud, strategy: str = "warm", cap: int = 10, **settings: Any) -> ActionType:
    """The fixture's action with this capacity (rendered by Terraform like every configuration)."""
    cloud.configure(
        actions=cloud.action_variables(
            image_id=cloud.linux_ami, strategy=strategy, max_concurrent_builds=cap, pool=settings
        )
    )
    action = config.load().action(ACTION)
    assert action is not None
    return action


def pool_config(action: ActionType) -> str:
    """The configuration hash of the pool's members (and of a job that sets no instance property)."""
    settings = config.load()
    return pools.build_config(settings, action, buildspec.pool_build(settings, action))


def keeper_pass(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, at: float | None = None) -> dict[str, Any]:
    """One scheduled keeper run at time `at` (now by default); what it did for the action."""
    monkeypatch.setattr(keeper, "now", lambda: time.time() if at is None else at)
    summary = keeper.handler(SCHEDULED, cloud.context)
    assert summary["failed"] == {}
    return summary["actions"][ACTION_KEY]


def members() -> dict[str, Member]:
    return {member.id: member for member in registry.members(ACTION_KEY)}


def instance(cloud: Cloud, instance_id: str) -> dict[str, Any]:
    [reservation] = cloud.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]


def ec2_state(cloud: Cloud, instance_id: str) -> str:
    return str(instance(cloud, instance_id)["State"]["Name"])


def filled(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, count: int, at: float | None = None) -> list[str]:
    """Passes until the pool's `count` launched members are ready (a warm pool takes two: launch, then promote)."""
    launched = keeper_pass(cloud, monkeypatch, at)["launched"]
    assert len(launched) == count
    promoted = keeper_pass(cloud, monkeypatch, None if at is None else at + 1)["promoted"]
    assert sorted(promoted) == sorted(launched)
    return launched


def execution(cloud: Cloud, arn: str) -> dict[str, Any]:
    """The execution once it has left RUNNING (its task took the answer)."""
    sfn = cloud.client("stepfunctions")
    return wait_for(
        lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e, what="the execution"
    )


def metrics(output: str) -> list[dict[str, Any]]:
    """The Embedded Metric Format lines among the pass's output lines."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


# --- filling and promoting ------------------------------------------------------------------------------------------


def test_a_warm_pool_is_filled_to_its_minimum_and_its_members_become_ready_once_online(cloud, monkeypatch) -> None:
    pool(cloud, min_ready=2)

    first = keeper_pass(cloud, monkeypatch)

    assert len(first["launched"]) == 2
    launched = members()
    assert sorted(launched) == sorted(first["launched"])
    assert {(m.state, m.kind, m.lease_job) for m in launched.values()} == {("launching", "warm", None)}
    described = instance(cloud, launched[first["launched"][0]].instance_id)
    values = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
    assert (values[tags.POOL], values[tags.MEMBER]) == (ACTION_KEY, first["launched"][0])
    assert tags.JOB_ID not in values  # the pool's own instance: no job owns it
    assert registry.counter(ACTION_KEY).instances == 2

    at = time.time()
    second = keeper_pass(cloud, monkeypatch, at)

    assert sorted(second["promoted"]) == sorted(first["launched"]) and second["launched"] == []
    assert [(m.state, m.idle_since) for m in members().values()] == [("ready", pytest.approx(at, abs=0.01))] * 2

    third = keeper_pass(cloud, monkeypatch)  # nothing left to do

    assert (third["launched"], third["promoted"], third["retired"]) == ([], [], {})
    assert registry.counter(ACTION_KEY).instances == 2


def test_a_stopped_pools_member_is_stopped_once_online_then_ready(cloud, monkeypatch) -> None:
    pool(cloud, "stopped", min_ready=1)

    [member_id] = keeper_pass(cloud, monkeypatch)["launched"]
    instance_id = members()[member_id].instance_id
    second = keeper_pass(cloud, monkeypatch)

    assert second["stopping"] == [member_id] and second["launched"] == []
    assert members()[member_id].state == "stopping"
    assert wait_for(lambda: ec2_state(cloud, instance_id) == "stopped", what="the stop")

    third = keeper_pass(cloud, monkeypatch)

    assert third["promoted"] == [member_id] and third["launched"] == []
    assert members()[member_id].state == "ready"
    assert (keeper_pass(cloud, monkeypatch)["retired"], ec2_state(cloud, instance_id)) == ({}, "stopped")


# --- the cap and the queue ------------------------------------------------------------------------------------------


def test_the_pool_never_grows_above_the_cap(cloud, monkeypatch) -> None:
    action = pool(cloud, cap=3, min_ready=3)
    for job_id in ("job-1", "job-2"):  # two builds hold two of the three slots
        assert registry.take(action, job_id, f"arn-{job_id}", pool_config(action)) is not None

    done = keeper_pass(cloud, monkeypatch)

    assert len(done["launched"]) == 1
    assert registry.counter(ACTION_KEY).instances == 3
    assert keeper_pass(cloud, monkeypatch)["launched"] == []  # promoted, and still at the cap
    assert len(members()) == 3


REFUSALS = {
    "throttled": lambda: faults.inject_api_error("ec2", "CreateFleet", "RequestLimitExceeded", "refused", times=None,
                                                 status=503),
    "no capacity": lambda: faults.fleet_capacity(available=0),  # every pool answers InsufficientInstanceCapacity
    "not allowed": lambda: faults.inject_api_error("ec2", "CreateFleet", "UnauthorizedOperation", "refused",
                                                   times=None, status=403),
}  # fmt: skip


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_a_refused_launch_gives_its_slot_back_and_the_next_pass_launches(cloud, monkeypatch, refusal) -> None:
    pool(cloud, min_ready=1)
    REFUSALS[refusal]()

    refused = keeper_pass(cloud, monkeypatch)

    assert refused["launched"] == []
    assert members() == {}  # no slot left reserved as if a launch were on its way
    assert registry.counter(ACTION_KEY).instances == 0

    faults.clear()
    assert len(keeper_pass(cloud, monkeypatch)["launched"]) == 1


def test_a_spot_pool_launches_its_members_on_spot(cloud, monkeypatch) -> None:
    """The keeper launches with the action's purchase option and no interruption (launcher.purchase_for)."""
    cloud.configure(
        actions=cloud.action_variables(image_id=cloud.linux_ami, strategy="warm", pool={"min_ready": 1},
                                       purchase_option="spot", instance_types=["m6i.large"])
    )  # fmt: skip
    faults.fleet_capacity(lifecycle="spot", instance_type="t3.large", available=0)  # the first type has no spot

    [member_id] = keeper_pass(cloud, monkeypatch)["launched"]

    member = members()[member_id]
    assert (member.lifecycle, member.instance_type) == ("spot", "m6i.large")
    described = cloud.client("ec2").describe_instances(InstanceIds=[member.instance_id])["Reservations"][0]
    assert described["Instances"][0]["InstanceLifecycle"] == "spot"


def test_queued_jobs_come_before_the_pools_growth(cloud, monkeypatch, task_token) -> None:
    action = pool(cloud, cap=2, min_ready=2)
    token, arn = task_token("queued-job")
    queue.enqueue(action, "queued-job", arn, token, time.time() + 3600, pool_config(action), "warm", time.time() - 5)

    done = keeper_pass(cloud, monkeypatch)

    assert done["granted"] == ["queued-job"]
    grant = json.loads(execution(cloud, arn)["output"])
    assert members()[grant["member_id"]].lease_job == "queued-job"
    assert len(done["launched"]) == 1  # the one slot the queued job left
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=2, queued=0)


def test_a_queue_is_served_when_capacity_frees(cloud, monkeypatch, task_token, capsys) -> None:
    action = pool(cloud, cap=1, min_ready=0)
    [member_id] = filled_for_a_job(cloud, monkeypatch, action, "busy-job")
    enqueued_at = time.time() - 30
    token, arn = task_token("waiting-job")
    queue.enqueue(action, "waiting-job", arn, token, enqueued_at + 3600, pool_config(action), "warm", enqueued_at)
    capsys.readouterr()

    assert keeper_pass(cloud, monkeypatch, enqueued_at + 30)["granted"] == []  # the cap: the busy job's member

    [line] = metrics(capsys.readouterr().out)
    assert (line["QueueDepth"], line["OldestQueuedSeconds"], line["LeasedInstances"]) == (1, pytest.approx(30), 1)
    assert cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"

    busy = members()[member_id]
    assert registry.release_lease(busy, "busy-job", registry.READY) is not None  # the busy job's build ended
    done = keeper_pass(cloud, monkeypatch, enqueued_at + 90)

    assert done["granted"] == ["waiting-job"]
    assert json.loads(execution(cloud, arn)["output"]) == {"member_id": member_id, "waited_seconds": 90}
    assert (members()[member_id].state, members()[member_id].lease_job) == ("leased", "waiting-job")
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=1, queued=0)


def filled_for_a_job(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, action: ActionType, job_id: str) -> list[str]:
    """The pool's one member, ready, then leased to a job (as acquire leases a ready member)."""
    cloud.configure(actions=cloud.action_variables(pool={"min_ready": 1}))
    filled(cloud, monkeypatch, 1)
    cloud.configure(actions=cloud.action_variables(pool={"min_ready": 0}))
    leased = registry.take(config.load().action(ACTION), job_id, f"arn-{job_id}", pool_config(action))
    assert leased is not None and leased.state == "leased"
    return [leased.id]


def test_an_overdue_queue_entry_fails_with_how_long_it_waited(cloud, monkeypatch, task_token) -> None:
    cloud.configure(actions=cloud.action_variables(max_concurrent_builds=1))  # an ephemeral action
    action = config.load().action(ACTION)
    assert registry.take(action, "busy-job", "arn-busy", "0123456789abcdef") is not None
    now = time.time()
    token, arn = task_token("late-job")
    queue.enqueue(action, "late-job", arn, token, now - 1, "0123456789abcdef", "ephemeral", now - 7 * 60)

    done = keeper_pass(cloud, monkeypatch, now)

    assert done["expired"] == ["late-job"] and done["granted"] == []
    assert execution(cloud, arn)["status"] == "FAILED"
    history = cloud.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    [failure] = [event["taskFailedEventDetails"] for event in history if "taskFailedEventDetails" in event]
    assert (failure["error"], failure["cause"]) == (
        "CapacityTimeout",
        "waited 7 minutes for capacity: action build allows 1 concurrent builds and all were busy; "
        "raise max_concurrent_builds or the build timeout",
    )
    assert registry.counter(ACTION_KEY).queued == 0


# --- schedule, health, rotation, idle -------------------------------------------------------------------------------


def test_the_minimum_follows_the_schedule_in_the_pools_timezone(cloud, monkeypatch) -> None:
    at = time.time()
    local = datetime.fromtimestamp(at, ZoneInfo("Asia/Tokyo"))
    window = {"days": [DAYS[local.weekday()]], "from_hour": local.hour, "to_hour": local.hour + 1, "min_ready": 2}
    pool(cloud, min_ready=0, schedule=[window], timezone="Asia/Tokyo", max_idle_minutes=10)

    ready = filled(cloud, monkeypatch, 2, at)  # inside the window: 2

    two_hours_later = keeper_pass(cloud, monkeypatch, at + 2 * 3600)  # outside it: 0

    assert two_hours_later["desired_min"] == 0
    assert sorted(two_hours_later["retired"]) == sorted(ready)
    assert all(reason.startswith("idle 120 minutes") for reason in two_hours_later["retired"].values())
    assert members() == {} and registry.counter(ACTION_KEY).instances == 0
    assert keeper_pass(cloud, monkeypatch, at + 2 * 3600 + 60)["launched"] == []


@pytest.mark.parametrize(
    ("behind_the_back", "reason"),
    [("terminate_instances", "its instance is "), ("stop_instances", "its instance is stopped, not running")],
    ids=["terminated", "stopped"],
)
def test_a_ready_instance_changed_behind_the_pools_back_is_replaced(cloud, monkeypatch, behind_the_back, reason):
    pool(cloud, min_ready=1)
    [member_id] = filled(cloud, monkeypatch, 1)
    old_instance = members()[member_id].instance_id
    getattr(cloud.client("ec2"), behind_the_back)(InstanceIds=[old_instance])
    wait_for(lambda: ec2_state(cloud, old_instance) in ("stopped", "terminated"), what="the change")

    done = keeper_pass(cloud, monkeypatch)

    assert list(done["retired"]) == [member_id] and done["retired"][member_id].startswith(reason)
    [replacement] = done["launched"]
    assert list(members()) == [replacement]
    assert ec2_state(cloud, old_instance) == "terminated"
    assert registry.counter(ACTION_KEY).instances == 1


def test_a_changed_configuration_rotates_the_ready_members_and_leaves_a_leased_one_alone(cloud, monkeypatch) -> None:
    action = pool(cloud, cap=3, min_ready=1)
    [leased_id] = filled_for_a_job(cloud, monkeypatch, action, "running-job")
    cloud.configure(actions=cloud.action_variables(pool={"min_ready": 1}))
    [ready_id] = filled(cloud, monkeypatch, 1)
    old_config = members()[ready_id].config

    cloud.configure(actions=cloud.action_variables(instance_type="t3.xlarge"))  # a new configuration
    done = keeper_pass(cloud, monkeypatch)

    assert list(done["retired"]) == [ready_id] and done["retired"][ready_id].startswith("rotated")
    [new_id] = done["launched"]
    after = members()
    assert after[new_id].config != old_config
    assert instance(cloud, after[new_id].instance_id)["InstanceType"] == "t3.xlarge"
    leased = after[leased_id]  # the running build's member: untouched, its release decides
    assert (leased.state, leased.lease_job, leased.config) == ("leased", "running-job", old_config)
    assert ec2_state(cloud, leased.instance_id) == "running"


def test_idle_members_above_the_minimum_retire_and_the_most_recently_idle_stay(cloud, monkeypatch) -> None:
    pool(cloud, min_ready=3, max_idle_minutes=10)
    at = time.time()
    ready = filled(cloud, monkeypatch, 3, at)
    table = registry.table()
    for minutes, member_id in enumerate(ready):  # idle since at, at + 1 minute, at + 2 minutes
        table.update_item(
            Key={"pool": ACTION_KEY, "id": member_id},
            UpdateExpression="SET idle_since = :at",
            ExpressionAttributeValues={":at": registry.Decimal(str(at + 60 * minutes))},
        )
    pool(cloud, min_ready=1, max_idle_minutes=10)

    assert keeper_pass(cloud, monkeypatch, at + 9 * 60)["retired"] == {}  # idle, but not long enough

    done = keeper_pass(cloud, monkeypatch, at + 12 * 60)

    assert sorted(done["retired"]) == sorted(ready[:2])
    assert done["retired"][ready[0]] == "idle 12 minutes above the pool's minimum of 1"
    assert list(members()) == [ready[2]] and done["launched"] == []
    assert registry.counter(ACTION_KEY).instances == 1


def test_a_failure_on_one_action_does_not_stop_the_others(cloud, monkeypatch, task_token) -> None:
    other = {
        "category": "Build", "provider": "EC2-Other", "versions": ["1"], "image_id": None, "instance_type": "t3.large",
        "timeout_minutes": 60, "root_volume_size_gib": 30, "max_concurrent_builds": 1,
    }  # fmt: skip
    cloud.configure(actions={**cloud.action_variables(image_id=cloud.linux_ami, strategy="warm", pool={"min_ready": 1}),
                             "other": other})  # fmt: skip
    other_action = config.load().actions_by_key()["other"]
    token, arn = task_token("late-job")
    queue.enqueue(other_action, "late-job", arn, token, time.time() - 1, "0123456789abcdef", "ephemeral")
    denied = "You are not authorized to perform this operation."
    faults.inject_api_error("ec2", "DescribeImages", "UnauthorizedOperation", denied, times=None, status=403)

    summary = keeper.handler(SCHEDULED, cloud.context)

    assert "UnauthorizedOperation" in summary["failed"][ACTION_KEY]
    assert summary["actions"]["other"]["expired"] == ["late-job"]
    assert execution(cloud, arn)["status"] == "FAILED"
    assert lock_item(ACTION_KEY) is None and lock_item("other") is None  # the failed pass released its lock too


def test_a_pass_describes_the_pools_instances_with_one_call_to_ec2_and_one_to_systems_manager(
    cloud, monkeypatch
) -> None:
    pool(cloud, min_ready=3)
    filled(cloud, monkeypatch, 3)
    cloud.configure(actions=cloud.action_variables(pool={"min_ready": 4}))
    keeper_pass(cloud, monkeypatch)  # a fourth member, launching: Online, it is promoted by the counted pass
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    clients = [aws.client("ec2"), aws.client("ssm")]
    for client in clients:
        client.meta.events.register("before-call", record)
    try:
        done = keeper_pass(cloud, monkeypatch)
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", record)

    assert len(done["promoted"]) == 1
    assert (calls.count("DescribeInstances"), calls.count("DescribeInstanceInformation")) == (1, 1)


def test_a_nudge_passes_over_the_action_it_names_only(cloud, monkeypatch) -> None:
    other = {
        "category": "Build", "provider": "EC2-Other", "versions": ["1"], "image_id": None, "instance_type": "t3.large",
        "timeout_minutes": 60, "root_volume_size_gib": 30,
    }  # fmt: skip
    cloud.configure(actions={**cloud.action_variables(image_id=cloud.linux_ami, strategy="warm", pool={"min_ready": 1}),
                             "other": other})  # fmt: skip

    summary = keeper.handler({"nudge": "member retired", "action": "other"}, cloud.context)

    assert list(summary["actions"]) == ["other"] and registry.members(ACTION_KEY) == []
    assert len(keeper.handler(SCHEDULED, cloud.context)["actions"][ACTION_KEY]["launched"]) == 1


# --- one pass at a time per action ----------------------------------------------------------------------------------


def lock_item(action_key: str) -> dict[str, Any] | None:
    item = registry.table().get_item(Key={"pool": action_key, "id": "#keeper"}, ConsistentRead=True).get("Item")
    return dict(item) if item else None


def test_two_passes_at_once_never_both_keep_an_action(cloud, monkeypatch, capsys) -> None:
    """The schedule's pass and release's nudge at once: the second finds the action's lock taken and skips it, so the
    pool is not grown twice towards its minimum (both would see it empty)."""
    pool(cloud, min_ready=2)
    monkeypatch.setattr(keeper, "now", time.time)
    growing, nudged = threading.Event(), threading.Event()  # the first pass is about to grow the pool; the nudge ran
    reserve, reserved = registry.reserve, []
    guard = threading.Lock()

    def reserve_after_the_nudge(*args: Any, **kwargs: Any) -> Member | None:
        with guard:
            reserved.append(threading.current_thread().name)
            first = len(reserved) == 1
        if first:  # the scheduled pass has judged the pool empty: the nudge comes now
            growing.set()
            assert nudged.wait(timeout=30)
        return reserve(*args, **kwargs)

    monkeypatch.setattr(registry, "reserve", reserve_after_the_nudge)
    summaries: dict[str, dict[str, Any]] = {}
    scheduled = threading.Thread(
        target=lambda: summaries.update(scheduled=keeper.handler(SCHEDULED, cloud.context)), name="scheduled"
    )
    started = time.time()
    scheduled.start()
    assert growing.wait(timeout=30)
    held = lock_item(ACTION_KEY)
    capsys.readouterr()

    nudge = threading.Thread(
        target=lambda: summaries.update(nudge=keeper.handler({"nudge": "member retired", "action": ACTION_KEY},
                                                             cloud.context)),
        name="nudge",
    )  # fmt: skip
    nudge.start()
    nudge.join(timeout=30)
    logged = capsys.readouterr().out
    nudged.set()
    scheduled.join(timeout=30)

    assert summaries["nudge"] == {"actions": {}, "failed": {}, "skipped": [ACTION_KEY]}
    assert "another keeper pass is keeping the action: skipped" in logged
    assert len(summaries["scheduled"]["actions"][ACTION_KEY]["launched"]) == 2
    assert reserved == ["scheduled", "scheduled"]
    assert len(members()) == 2 and registry.counter(ACTION_KEY).instances == 2  # the minimum, not twice it
    # Held until the invocation's timeout at the latest (a pass that dies holds it no longer), released at the end.
    assert held is not None
    assert float(held["lock_until"]) == pytest.approx(started + cloud.context.remaining_ms / 1000, abs=2)
    assert lock_item(ACTION_KEY) is None


def test_a_lock_left_by_a_pass_that_died_expires_at_its_invocations_timeout(cloud, monkeypatch) -> None:
    pool(cloud, min_ready=1)
    at = time.time()
    assert registry.lock_keeper(ACTION_KEY, "a pass that died", at, at + 300)

    monkeypatch.setattr(keeper, "now", lambda: at + 299)
    assert keeper.handler(SCHEDULED, cloud.context)["skipped"] == [ACTION_KEY]
    assert members() == {}

    done = keeper_pass(cloud, monkeypatch, at + 301)

    assert len(done["launched"]) == 1
    assert lock_item(ACTION_KEY) is None
    assert registry.unlock_keeper(ACTION_KEY, "a pass that died") is False  # its late release takes nobody's lock
