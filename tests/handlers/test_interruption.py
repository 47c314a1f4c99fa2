"""interruption: EC2's events about a builder going away end the build's RunBuildCommand task: SpotInterrupted for a
spot instance (the state machine restarts the build), InstanceLost for an on-demand one; a command that already ended
keeps its outcome. Against the local cloud: builds really run on the SSM Agent, the tasks wait in Step Functions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import ACCOUNT, ACTION, REGION, STACK, Agent, Cloud, build_spec, make_job, wait_for

from ec2_action import config, jobs, registry, tags
from ec2_action.handlers import acquire, interruption, run_command, wait_online
from emulator import faults
from emulator.ec2 import events as ec2_emulator_events


@dataclass
class Build:
    """A build waiting in RunBuildCommand: its job, instance (as acquire outputs it), command and execution."""

    job: dict[str, Any]
    instance: dict[str, Any]
    command_id: str
    execution_arn: str

    @property
    def instance_id(self) -> str:
        return str(self.instance["instance_id"])


def launched_instance(cloud: Cloud, job: dict[str, Any], lifecycle: str = "spot", stack: str = STACK) -> dict[str, Any]:
    """The job's instance as acquire makes it: a member record leased to the job, the instance launched from the
    module's launch template with the member's tags (a spot instance when asked), the member `launching` with it;
    acquire's output `instance`."""
    jobs.claim(job["id"], "1", f"arn:aws:states:{REGION}:{ACCOUNT}:execution:job:{job['id']}", "{}", job["action"],
               "app")  # fmt: skip
    action = config.load().action(ACTION)
    assert action is not None
    member = registry.reserve(action, "configuration", "ephemeral", job_id=job["id"], fair=False)
    assert member is not None
    market = {"InstanceMarketOptions": {"MarketType": "spot"}} if lifecycle == "spot" else {}
    template_id, version = config.load().launch_template("Linux")
    labels = {tags.STACK: stack, tags.POOL: action.key, tags.MEMBER: member.id, tags.JOB_ID: job["id"]}
    launched = cloud.client("ec2").run_instances(
        ImageId=cloud.linux_ami, InstanceType="t3.large", MinCount=1, MaxCount=1,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
        SubnetId=cloud.settings["subnet_ids"][0],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in labels.items()]}],
        **market,
    )["Instances"][0]  # fmt: skip
    instance = {
        "instance_id": launched["InstanceId"], "subnet_id": launched["SubnetId"],
        "launched_at": launched["LaunchTime"].isoformat(), "launched_epoch": launched["LaunchTime"].timestamp(),
        "member_id": member.id, "pool": action.key, "kind": "ephemeral", "boot": "launch",
        "instance_type": "t3.large", "lifecycle": lifecycle,
    }  # fmt: skip
    registry.launched(member, instance)
    return instance


def building(cloud: Cloud, task_token: Any, command: str, lifecycle: str = "spot", stack: str = STACK) -> Build:
    """A build of the job on its own instance, Online (wait_online), its command sent (run_command) and awaited by a
    task token."""
    job = make_job(input_artifact=None, configuration={})
    instance = launched_instance(cloud, job, lifecycle, stack)
    build = build_spec(cloud.linux_ami, command=command)
    assert wait_online.handler({"job_id": job["id"], "build": build, "instance": instance}, cloud.context)["online"]
    token, execution = task_token(job["id"])
    event = {"task_token": token, "job": job, "build": build, "instance": instance}
    return Build(job, instance, run_command.handler(event, cloud.context)["command_id"], execution)


def ec2_event(detail_type: str, instance_id: str, **detail: str) -> dict[str, Any]:
    """An EC2 event as EventBridge delivers it to the function."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.ec2", "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, **detail},
    }  # fmt: skip


def warning(instance_id: str) -> dict[str, Any]:
    return ec2_event(interruption.WARNING, instance_id, **{"instance-action": "terminate"})


def state_change(instance_id: str, state: str) -> dict[str, Any]:
    return ec2_event(interruption.STATE_CHANGE, instance_id, state=state)


def ended(cloud: Cloud, arn: str) -> dict[str, Any]:
    """The execution once its task was answered: its status, and its error and cause when it failed."""
    sfn = cloud.client("stepfunctions")
    described = wait_for(lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e,
                         what="the execution's end")  # fmt: skip
    failed = [
        event["executionFailedEventDetails"]
        for event in sfn.get_execution_history(executionArn=arn)["events"]
        if event["type"] == "ExecutionFailed"
    ]
    return {"status": described["status"], "output": described.get("output"), **(failed[0] if failed else {})}


def running(cloud: Cloud, arn: str) -> bool:
    return cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"


def command_status(cloud: Cloud, build: Build) -> str:
    return str(cloud.client("ssm").list_commands(CommandId=build.command_id)["Commands"][0]["Status"])


def test_a_spot_instance_interrupted_during_the_build_fails_its_task_with_spot_interrupted(
    cloud: Cloud, agent: Agent, task_token: Any
) -> None:
    build = building(cloud, task_token, "sleep 60")

    result = interruption.handler(warning(build.instance_id), cloud.context)

    assert result == {"acted": True, "why": "the build's wait was ended"}
    failed = ended(cloud, build.execution_arn)
    assert (failed["status"], failed["error"]) == ("FAILED", "SpotInterrupted")
    cause = json.loads(failed["cause"])
    assert cause["instance_id"] == build.instance_id and cause["step"] == "RunBuildCommand"
    assert cause["reason"] == "spot interruption warning (terminate)" and cause["at"]
    assert "task_token" not in cloud.item(build.job["id"])  # taken: a later event about the instance does nothing
    assert wait_for(lambda: command_status(cloud, build) in ("Cancelling", "Cancelled"), what="the cancellation")
    # EC2 terminates it two minutes later: its state change finds no token left.
    cloud.client("ec2").terminate_instances(InstanceIds=[build.instance_id])
    assert interruption.handler(state_change(build.instance_id, "shutting-down"), cloud.context)["acted"] is False


def test_a_lost_warning_is_made_up_for_by_the_state_change(cloud: Cloud, agent: Agent, task_token: Any) -> None:
    build = building(cloud, task_token, "sleep 60")
    cloud.client("ec2").terminate_instances(InstanceIds=[build.instance_id])

    assert interruption.handler(state_change(build.instance_id, "shutting-down"), cloud.context)["acted"] is True

    failed = ended(cloud, build.execution_arn)
    assert (failed["status"], failed["error"]) == ("FAILED", "SpotInterrupted")
    assert json.loads(failed["cause"])["instance_id"] == build.instance_id


def test_a_command_that_already_succeeded_is_delivered_and_never_failed(
    cloud: Cloud, agent: Agent, task_token: Any
) -> None:
    """The command's success event was lost (or not handled yet) when the instance went: its outcome stands, the
    build is not run a second time."""
    build = building(cloud, task_token, "echo built")
    agent.final_event(build.command_id)  # the command ended; its event is never handed to command_event

    result = interruption.handler(warning(build.instance_id), cloud.context)

    assert result["acted"] is False and "already ended" in result["why"]
    outcome = ended(cloud, build.execution_arn)
    assert outcome["status"] == "SUCCEEDED"
    assert json.loads(outcome["output"])["status"] == "Success"
    assert command_status(cloud, build) == "Success"


def test_an_instance_with_no_command_awaited_is_left_to_wait_online(cloud: Cloud, agent: Agent) -> None:
    """During the wait for Systems Manager there is no task token: wait_online notices the instance gone itself."""
    job = make_job(input_artifact=None, configuration={})
    instance = launched_instance(cloud, job)
    cloud.client("ec2").terminate_instances(InstanceIds=[instance["instance_id"]])

    result = interruption.handler(state_change(instance["instance_id"], "terminated"), cloud.context)

    assert result["acted"] is False and "awaits no command" in result["why"]
    assert "task_token" not in cloud.item(job["id"])


def test_another_stacks_instance_is_ignored(cloud: Cloud, agent: Agent, task_token: Any) -> None:
    build = building(cloud, task_token, "sleep 60", stack="another-stack")

    result = interruption.handler(warning(build.instance_id), cloud.context)

    assert result == {"acted": False, "why": "not an instance of this stack"}
    assert running(cloud, build.execution_arn) and cloud.item(build.job["id"])["task_token"]


def test_an_instance_ec2_does_not_know_and_an_idle_member_are_ignored(cloud: Cloud, agent: Agent) -> None:
    assert interruption.handler(warning("i-0123456789abcdef0"), cloud.context) == {
        "acted": False,
        "why": "EC2 does not know the instance",
    }
    job = make_job(input_artifact=None, configuration={})
    instance = launched_instance(cloud, job)
    action = config.load().action(ACTION)
    assert action is not None
    member = registry.member(action.key, instance["member_id"])
    assert member is not None
    assert registry.release_lease(member, job["id"], registry.READY) is not None  # back in its pool, idle

    result = interruption.handler(warning(instance["instance_id"]), cloud.context)

    assert result["acted"] is False and "no job holds the instance" in result["why"]


def test_an_on_demand_instance_terminated_during_the_build_fails_it_at_once_with_instance_lost(
    cloud: Cloud, agent: Agent, task_token: Any
) -> None:
    build = building(cloud, task_token, "sleep 60", lifecycle="on-demand")
    cloud.client("ec2").terminate_instances(InstanceIds=[build.instance_id])

    assert interruption.handler(state_change(build.instance_id, "shutting-down"), cloud.context)["acted"] is True

    failed = ended(cloud, build.execution_arn)
    assert (failed["status"], failed["error"]) == ("FAILED", "InstanceLost")
    assert failed["cause"].startswith(f"instance {build.instance_id} was terminated during the build (")


@pytest.mark.parametrize("state", ["pending", "running", "stopping", "stopped"])
def test_other_state_changes_do_nothing(cloud: Cloud, agent: Agent, task_token: Any, state: str) -> None:
    build = building(cloud, task_token, "sleep 60")

    assert interruption.handler(state_change(build.instance_id, state), cloud.context)["acted"] is False

    assert running(cloud, build.execution_arn) and cloud.item(build.job["id"])["task_token"]


def test_a_rebalance_recommendation_is_only_logged(cloud: Cloud, agent: Agent, task_token: Any) -> None:
    build = building(cloud, task_token, "sleep 60")
    event = ec2_event(interruption.REBALANCE, build.instance_id)

    assert interruption.handler(event, cloud.context) == {"acted": False, "why": "rebalance recommendation"}

    assert running(cloud, build.execution_arn) and cloud.item(build.job["id"])["task_token"]
    assert command_status(cloud, build) == "InProgress"


def test_an_execution_that_moved_on_is_not_an_error(cloud: Cloud, agent: Agent, task_token: Any) -> None:
    """The task timed out or the execution was stopped: SendTaskFailure answers TaskTimedOut, which is ignored."""
    build = building(cloud, task_token, "sleep 60")
    cloud.client("stepfunctions").stop_execution(executionArn=build.execution_arn)

    result = interruption.handler(warning(build.instance_id), cloud.context)

    assert result == {"acted": False, "why": "the task no longer waits (the execution moved on)"}


def test_the_taken_token_is_taken_once(cloud: Cloud) -> None:
    job = make_job()
    jobs.claim(job["id"], "1", "arn", "{}", job["action"], "app")
    jobs.await_command(job["id"], "token-1", "i-1", "BuildOnLinux", 0.0)

    assert jobs.take_token(job["id"], "token-2") is False  # another attempt's token is not this one
    assert jobs.take_token(job["id"], "token-1") is True
    assert jobs.take_token(job["id"], "token-1") is False
    assert "task_token" not in cloud.item(job["id"])


# --- EC2's own interruption (faults.interrupt_spot): its events, in the order EC2 sends them ------------------------


@pytest.fixture
def ec2_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """EC2's events as EventBridge delivers them, collected instead of routed to rules (none exist here); AWS's two
    minutes of notice last about a second."""
    monkeypatch.setenv("LOCALCLOUD_TIME_SCALE", "0.01")
    found: list[dict[str, Any]] = []

    def sink(source: str, detail_type: str, detail: dict[str, Any], account: str, region: str,
             resources: list[str] | None = None) -> None:  # fmt: skip
        found.append({"source": source, "detail-type": detail_type, "account": account, "region": region,
                      "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "resources": resources or [],
                      "detail": detail})  # fmt: skip

    ec2_emulator_events.set_event_sink(sink)
    yield found
    ec2_emulator_events.set_event_sink(None)


def spot_build(cloud: Cloud, task_token: Any, command: str) -> tuple[dict[str, Any], Build]:
    """A build of a spot action as the functions run it: acquire (CreateFleet), wait_online, run_command; (acquire's
    output, the build)."""
    cloud.configure(actions=cloud.action_variables(purchase_option="spot", interruptions_before_on_demand=1))
    job = make_job(input_artifact=None, configuration={"Command": command, "ImageId": cloud.linux_ami})
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:job:{job['id']}"
    jobs.claim(job["id"], "1", arn, "{}", job["action"], "app")
    state = acquire.handler({"state": {"job": job}, "execution_arn": arn}, cloud.context)
    assert state["instance"]["lifecycle"] == "spot"
    waited = {"job_id": job["id"], "build": state["build"], "instance": state["instance"]}
    assert wait_online.handler(waited, cloud.context)["online"]
    token, execution = task_token(job["id"])
    sent = {"task_token": token, "job": job, "build": state["build"], "instance": state["instance"]}
    return state, Build(job, state["instance"], run_command.handler(sent, cloud.context)["command_id"], execution)


def deliver_all(cloud: Cloud, events: list[dict[str, Any]], instance_id: str) -> list[bool]:
    """Hand every event about the instance to the function, in order (as its rules would): whether each acted."""
    about = [event for event in events if event["detail"].get("instance-id") == instance_id]
    return [interruption.handler(event, cloud.context)["acted"] for event in about]


@pytest.mark.parametrize("warned", [True, False], ids=["warning", "warning-lost"])
def test_ec2s_interruption_of_a_spot_build_restarts_it_in_the_same_member(
    cloud: Cloud, agent: Agent, task_token: Any, ec2_events: list[dict[str, Any]], warned: bool
) -> None:
    """The warning (or, when it is lost, the state change) fails the task with SpotInterrupted once; the caught error
    brings the execution back to acquire, which launches a fresh instance into the job's member (on-demand: the
    action's budget is one interruption) and counts the interruption with the step the cause names."""
    state, build = spot_build(cloud, task_token, "sleep 60")

    faults.interrupt_spot(build.instance_id, warning=warned)
    wait_for(lambda: any(e["detail"].get("state") == "terminated" for e in ec2_events), what="the termination")

    kinds = [(e["detail-type"], e["detail"].get("state")) for e in ec2_events
             if e["detail"].get("instance-id") == build.instance_id]  # fmt: skip
    acting = (interruption.WARNING, None) if warned else (interruption.STATE_CHANGE, "shutting-down")
    assert (interruption.WARNING, None) in kinds if warned else (interruption.WARNING, None) not in kinds
    acted = deliver_all(cloud, ec2_events, build.instance_id)
    assert [kind for kind, did in zip(kinds, acted, strict=True) if did] == [acting]  # once, by the first to come
    failed = ended(cloud, build.execution_arn)
    assert failed["error"] == "SpotInterrupted"
    caught = {"Error": failed["error"], "Cause": failed["cause"]}  # the Catch's ResultPath $.interrupted
    restarted = acquire.handler(
        {"state": {**state, "interrupted": caught}, "execution_arn": build.execution_arn}, cloud.context
    )
    fresh = restarted["instance"]
    assert fresh["instance_id"] != build.instance_id and fresh["member_id"] == build.instance["member_id"]
    assert fresh["lifecycle"] == "on-demand"
    assert restarted["attempt"]["interruptions"] == 1
    [entry] = restarted["attempt"]["history"]
    assert (entry["instance_id"], entry["step"]) == (build.instance_id, "RunBuildCommand")
    # The old instance's later events (and the new instance's) act on nothing: the member holds the new instance.
    assert not any(deliver_all(cloud, ec2_events, build.instance_id))


def test_an_interruption_after_the_commands_success_runs_nothing_twice(
    cloud: Cloud, agent: Agent, task_token: Any, ec2_events: list[dict[str, Any]]
) -> None:
    _, build = spot_build(cloud, task_token, "echo built once")
    agent.final_event(build.command_id)  # its success event is not handled before the interruption's

    faults.interrupt_spot(build.instance_id)
    wait_for(lambda: any(e["detail"].get("state") == "terminated" for e in ec2_events), what="the termination")

    assert not any(deliver_all(cloud, ec2_events, build.instance_id))
    outcome = ended(cloud, build.execution_arn)
    assert outcome["status"] == "SUCCEEDED" and json.loads(outcome["output"])["status"] == "Success"
    assert len(cloud.client("ssm").list_commands(InstanceId=build.instance_id)["Commands"]) == 1


def test_a_rebalance_recommendation_from_ec2_changes_nothing(
    cloud: Cloud, agent: Agent, task_token: Any, ec2_events: list[dict[str, Any]]
) -> None:
    _, build = spot_build(cloud, task_token, "sleep 60")

    faults.rebalance_recommendation(build.instance_id)

    [event] = [e for e in ec2_events if e["detail-type"] == interruption.REBALANCE]
    assert interruption.handler(event, cloud.context)["acted"] is False
    assert running(cloud, build.execution_arn) and command_status(cloud, build) == "InProgress"
