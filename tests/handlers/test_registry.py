"""registry: the cap, leases and fairness, each held by a conditional write or a transaction (DynamoDB in moto)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from conftest import ACTION, ACTION_KEY, Cloud

from ec2_action import config, queue, registry
from ec2_action.config import ActionType

CONFIG = "0123456789abcdef"


def warm(cloud: Cloud, cap: int = 2, **pool: Any) -> ActionType:
    """The fixture's action as a warm pool with this cap (rendered by Terraform like every configuration)."""
    cloud.configure(
        actions=cloud.action_variables(
            image_id=cloud.linux_ami, strategy="warm", max_concurrent_builds=cap, pool=pool or {"min_ready": 0}
        )
    )
    action = config.load().action(ACTION)
    assert action is not None and action.key == ACTION_KEY
    return action


def ready_member(action: ActionType, config_hash: str = CONFIG) -> str:
    """A ready member of the pool, as the keeper leaves one (reserved for the pool, launched, promoted), with an
    instance in moto."""
    member = registry.reserve(action, config_hash, action.strategy)
    assert member is not None
    image_id = config.load().action(ACTION).defaults["ImageId"]  # type: ignore[union-attr]
    ec2 = boto3.client("ec2", region_name="us-east-1")
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    launched = registry.launched(
        member, {"instance_id": instance_id, "subnet_id": "subnet-1", "launched_at": "now", "launched_epoch": 1.0}
    )
    assert registry.mark(launched, registry.READY, idle_since=5.0) is not None
    return member.id


def test_a_new_slot_is_reserved_until_the_cap_then_none(cloud: Cloud) -> None:
    action = warm(cloud, cap=2)
    first = registry.take(action, "job-1", "arn-1", CONFIG)
    second = registry.take(action, "job-2", "arn-2", CONFIG, kind="ephemeral")
    assert first is not None and second is not None
    assert (first.state, first.kind, first.lease_job, first.lease_execution) == ("reserved", "warm", "job-1", "arn-1")
    assert second.kind == "ephemeral"  # a job not matching the pool: same cap, never pooled

    assert registry.take(action, "job-3", "arn-3", CONFIG) is None
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=2, queued=0)
    assert {m.lease_job for m in registry.members(ACTION_KEY)} == {"job-1", "job-2"}


def test_removing_a_member_frees_its_slot_once(cloud: Cloud) -> None:
    action = warm(cloud, cap=1)
    member = registry.take(action, "job-1", None, CONFIG)
    assert member is not None
    assert registry.remove(member) is True
    assert registry.remove(member) is False  # a retry removes nothing and decrements nothing
    assert registry.counter(ACTION_KEY).instances == 0
    assert registry.take(action, "job-2", None, CONFIG) is not None


def test_a_ready_member_of_the_jobs_configuration_is_leased_before_a_slot_is_reserved(cloud: Cloud) -> None:
    action = warm(cloud, cap=3)
    other = ready_member(action, config_hash="ffffffffffffffff")
    mine = ready_member(action)

    leased = registry.take(action, "job-1", "arn-1", CONFIG)

    assert leased is not None and leased.id == mine and leased.state == "leased" and leased.lease_job == "job-1"
    assert leased.instance_id == registry.member(ACTION_KEY, mine).instance_id
    assert registry.member(ACTION_KEY, other).state == "ready"  # another configuration never serves this job
    assert registry.counter(ACTION_KEY).instances == 2  # leasing takes no new slot


def test_two_jobs_racing_for_the_last_ready_member_one_leases_one_gets_none(cloud: Cloud) -> None:
    action = warm(cloud, cap=1)
    member_id = ready_member(action)
    stale = registry.members(ACTION_KEY)  # both jobs read the pool before either leased

    first = registry.take(action, "job-1", None, CONFIG, current=stale)
    second = registry.take(action, "job-2", None, CONFIG, current=stale)

    assert first is not None and first.id == member_id
    assert second is None  # the lease's condition failed, and the cap leaves no slot: the job queues
    assert registry.member(ACTION_KEY, member_id).lease_job == "job-1"


def test_the_cap_is_never_exceeded_under_concurrent_takes(cloud: Cloud) -> None:
    action = warm(cloud, cap=5)
    taken: list[str] = []
    barrier = threading.Barrier(12)

    def take(job_id: str) -> None:
        barrier.wait()
        if registry.take(action, job_id, None, CONFIG) is not None:
            taken.append(job_id)

    threads = [threading.Thread(target=take, args=(f"job-{i}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(taken) == 5
    assert len(registry.members(ACTION_KEY)) == 5 and registry.counter(ACTION_KEY).instances == 5


def test_a_newcomer_does_not_pass_a_queued_job(cloud: Cloud) -> None:
    action = warm(cloud, cap=2)
    ready_member(action)
    queue.enqueue(action, "queued-job", "arn-q", "token-q", deadline=10**10, config=CONFIG, kind="warm")

    assert registry.take(action, "newcomer", None, CONFIG) is None  # neither the ready member
    assert registry.take(action, "newcomer", None, CONFIG, kind="ephemeral") is None  # nor the free slot
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=1, queued=1)


def test_mark_and_release_lease_hold_only_for_the_state_and_lease_read(cloud: Cloud) -> None:
    action = warm(cloud, cap=2)
    member = registry.take(action, "job-1", None, CONFIG)
    assert member is not None
    launched = registry.launched(
        member, {"instance_id": "i-1", "subnet_id": "subnet-1", "launched_at": "now", "launched_epoch": 2.5}
    )
    assert (launched.state, launched.launched_epoch) == ("launching", 2.5)
    assert registry.mark(member, registry.READY) is None  # member was read as reserved: it changed since

    assert registry.release_lease(launched, "job-2", registry.READY) is None  # not job-2's
    returned = registry.release_lease(launched, "job-1", registry.READY)
    assert returned is not None and returned.state == "ready" and returned.lease_job is None
    assert returned.builds == 1 and returned.idle_since is not None
    assert registry.release_lease(launched, "job-1", registry.READY) is None  # a retry changes nothing
    assert registry.member(ACTION_KEY, member.id).builds == 1


@pytest.mark.parametrize("fair", [True, False])
def test_the_keepers_reservation_yields_to_queued_jobs_unless_told(cloud: Cloud, fair: bool) -> None:
    action = warm(cloud, cap=3)
    queue.enqueue(action, "queued-job", "arn-q", "token-q", deadline=10**10, config=CONFIG, kind="warm")
    reserved = registry.reserve(action, CONFIG, "warm", fair=fair)
    assert (reserved is None) is fair
