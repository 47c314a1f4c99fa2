"""Pools for the handler tests: the fixture's action as a warm or stopped pool (rendered by Terraform like every
configuration), and pool members made the way the functions make them (acquire launches one for a job, release
returns it to the pool; the keeper's last step for a stopped member, `stopping -> ready` once EC2 says stopped)."""

from __future__ import annotations

from typing import Any

from conftest import ACTION, Cloud, make_job, wait_for

from ec2_action import config, registry
from ec2_action.config import ActionType
from ec2_action.handlers import acquire, release

SUCCEEDED = {"status": "Success", "response_code": 0}


def configure_pool(cloud: Cloud, strategy: str = "warm", cap: int = 2, **pool: Any) -> ActionType:
    """The fixture's action with this capacity: a pool of the Linux AMI on t3.large (its defaults)."""
    cloud.configure(
        actions=cloud.action_variables(
            image_id=cloud.linux_ami, strategy=strategy, max_concurrent_builds=cap, pool=pool or {"min_ready": 0}
        )
    )
    action = config.load().action(ACTION)
    assert action is not None
    return action


def pool_job(**configuration: str) -> dict[str, Any]:
    """A job of the action that sets no instance property (it matches the pool) unless told."""
    return make_job(configuration={"Command": "make test", **configuration})


def acquired(cloud: Cloud, job: dict[str, Any], state: dict[str, Any] | None = None) -> dict[str, Any]:
    """AcquireInstance's output for the job (the state after a wait for capacity, when given); its Parameters are
    {"state.$": "$", "execution_arn.$": "$$.Execution.Id"}."""
    arn = f"arn:aws:states:us-east-1:123456789012:execution:job:{job['id']}"
    return acquire.handler({"state": {**(state or {}), "job": job}, "execution_arn": arn}, cloud.context)


def released(cloud: Cloud, state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """ReleaseInstance's output for the state after a build (succeeded unless `changes` say otherwise)."""
    return release.handler({"state": {**state, "command": SUCCEEDED, **changes}}, cloud.context)


def ec2_state(cloud: Cloud, instance_id: str) -> str:
    reservations = cloud.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def settle_stopped(cloud: Cloud, member_id: str) -> registry.Member:
    """A stopping member is ready once EC2 says stopped (what the keeper does on its pass)."""
    action = config.load().action(ACTION)
    assert action is not None
    member = registry.member(action.key, member_id)
    assert member is not None and member.state == registry.STOPPING and member.instance_id
    wait_for(lambda: ec2_state(cloud, member.instance_id) == "stopped", what="the member's instance stopped")
    ready = registry.mark(member, registry.READY)
    assert ready is not None
    return ready


def ready_member(cloud: Cloud) -> registry.Member:
    """A ready member of the configured pool, made by one build: acquire launches it, release returns it (warm)
    or stops it (stopped, then settled)."""
    state = acquired(cloud, pool_job())
    assert state["instance"]["boot"] == "launch" and state["instance"]["kind"] != "ephemeral"
    released(cloud, state)
    member_id = state["instance"]["member_id"]
    action = config.load().action(ACTION)
    assert action is not None
    if action.strategy == "stopped":
        return settle_stopped(cloud, member_id)
    member = registry.member(action.key, member_id)
    assert member is not None and member.state == registry.READY
    return member
