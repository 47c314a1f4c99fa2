"""wait_online (WaitForSsmOnline) against the local cloud's SSM Agent: instances launched by acquire register
`LOCALCLOUD_SSM_REGISTRATION_DELAY` seconds after launch (tests/emulator/ssm/agent.py), and the function waits for
that inside one invocation, learning the registration time of the AMI and instance type in the jobs table."""

import json
import time
from typing import Any

import pytest
from conftest import Agent, Cloud, build_spec, make_job
from pool_fixtures import acquired as acquired_in_pool
from pool_fixtures import configure_pool, pool_job, ready_member

from ec2_action import errors, jobs, registration
from ec2_action.errors import InstanceLost, InstanceNotReady, SpotInterrupted
from ec2_action.handlers import acquire, wait_online
from emulator import faults
from emulator.ssm.agent import AGENT_VERSION

REGISTRATION_DELAY = 4  # seconds: long enough for a first wait to make several checks, short enough for a test


@pytest.fixture
def registers_after(monkeypatch: pytest.MonkeyPatch, agent: Agent) -> None:
    """Instances come Online REGISTRATION_DELAY real seconds after their launch."""
    monkeypatch.setenv("LOCALCLOUD_SSM_REGISTRATION_DELAY", str(REGISTRATION_DELAY))
    monkeypatch.setenv("LOCALCLOUD_TIME_SCALE", "1")


class RunningInvocation:
    """The Lambda context of an invocation whose time runs out `seconds` from now."""

    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ec2-build-wait-online"

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends - time.monotonic()) * 1000)


def acquired(cloud: Cloud) -> dict[str, Any]:
    """A claimed job's AcquireInstance output: {job, build, instance}."""
    job = make_job(configuration={"Command": "make test", "ImageId": cloud.linux_ami})
    jobs.claim(job["id"], "1", f"arn:aws:states:us-east-1:123456789012:execution:m:{job['id']}", "{}", job["action"],
               "app")  # fmt: skip
    return acquire.handler({"job": job, "execution_arn": "arn"}, cloud.context)


def wait_event(state: dict[str, Any]) -> dict[str, Any]:
    """WaitForSsmOnline's Parameters (asl/build-job.asl.json)."""
    return {"job_id": state["job"]["id"], "build": state["build"], "instance": state["instance"]}


def learned_item(cloud: Cloud) -> dict[str, Any] | None:
    return cloud.item(f"registration#{cloud.linux_ami}#t3.large")


def test_an_online_instance_is_reported_with_its_platform_agent_and_checks(cloud: Cloud, agent: Agent) -> None:
    state = acquired(cloud)  # the agent fixture: registration at launch

    before = time.time()
    output = wait_online.handler(wait_event(state), cloud.context)

    online_at = output.pop("online_at")  # when it was seen Online: the end of the report's BootSeconds
    assert output == {"online": True, "checks": 1, "platform_type": "Linux", "agent_version": AGENT_VERSION}
    assert state["instance"]["launched_epoch"] <= online_at and before <= online_at <= time.time()


def test_the_registration_time_is_learned_and_the_next_wait_checks_less(cloud: Cloud, registers_after: None) -> None:
    assert learned_item(cloud) is None
    first = wait_online.handler(wait_event(acquired(cloud)), cloud.context)

    # Checked every second from the launch: it came Online at the check after REGISTRATION_DELAY seconds.
    assert first["online"] is True and first["checks"] >= REGISTRATION_DELAY
    item = learned_item(cloud)
    assert item is not None
    assert REGISTRATION_DELAY - 1.5 <= item["seconds"] <= REGISTRATION_DELAY
    assert abs(int(item["observed_at"]) - time.time()) < 5
    assert item["expires_at"] - item["observed_at"] == registration.RETENTION_SECONDS

    started = time.monotonic()
    second = wait_online.handler(wait_event(acquired(cloud)), cloud.context)

    assert second["online"] is True
    assert second["checks"] < first["checks"] and second["checks"] <= 3  # sleeps until just before the learned time
    assert time.monotonic() - started < REGISTRATION_DELAY + 1.5  # and still sees it within about a second
    assert learned_item(cloud)["seconds"] == item["seconds"]  # the same time (within a second) is not written again


def test_a_terminated_or_stopped_instance_is_lost(cloud: Cloud, agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registration, "EC2_STATE_EVERY", 2.0)  # read the EC2 state every 2 s, not every 30 s
    faults.never_register(count=2)
    for action in ("terminate_instances", "stop_instances"):
        state = acquired(cloud)
        instance_id = state["instance"]["instance_id"]
        getattr(cloud.client("ec2"), action)(InstanceIds=[instance_id])

        with pytest.raises(InstanceLost, match=rf"instance {instance_id} is (terminated|stopped|stopping) \(.+\)"):
            wait_online.handler(wait_event(state), cloud.context)
    assert learned_item(cloud) is None


def test_the_end_of_the_registration_window_is_not_ready(cloud: Cloud, agent: Agent) -> None:
    faults.never_register(count=1)
    state = acquired(cloud)
    instance_id = state["instance"]["instance_id"]
    window = cloud.settings["ssm_registration_timeout_seconds"]
    state["instance"]["launched_epoch"] = time.time() - window - 1  # launched a registration window ago

    with pytest.raises(InstanceNotReady) as raised:
        wait_online.handler(wait_event(state), cloud.context)

    assert str(raised.value) == (
        f"instance {instance_id} is running; Systems Manager status: not Online after 1 checks"
    )
    assert learned_item(cloud) is None


def test_a_registration_later_than_the_invocation_can_wait_gives_the_turn_back(cloud: Cloud, agent: Agent) -> None:
    """The learned time is beyond this invocation: no check, no error; the state machine invokes the wait again."""
    registration.learn(cloud.linux_ami, "t3.large", 600.0, None, time.time())
    state = acquired(cloud)
    started = time.monotonic()

    assert wait_online.handler(wait_event(state), cloud.context) == {"online": False, "checks": 0}
    assert time.monotonic() - started < 1


def test_the_wait_ends_its_turn_before_the_invocation_times_out(cloud: Cloud, agent: Agent) -> None:
    faults.never_register(count=1)
    state = acquired(cloud)
    invocation = RunningInvocation(wait_online.RESERVED_SECONDS + 2.5)

    output = wait_online.handler(wait_event(state), invocation)

    # Checks every second while the invocation has more than RESERVED_SECONDS left: at 0, 1 and 2 seconds.
    assert output == {"online": False, "checks": 3}
    assert invocation.get_remaining_time_in_millis() > (wait_online.RESERVED_SECONDS - 1) * 1000


# --- boot kinds: a launch, a start of a stopped pool member, a ready warm member -------------------------------------


def test_a_ready_warm_member_checked_by_acquire_is_online_at_once_and_teaches_nothing(
    cloud: Cloud, agent: Agent
) -> None:
    configure_pool(cloud, "warm", cap=1)
    ready_member(cloud)
    registration.learn(cloud.linux_ami, "t3.large", 30.0, None, time.time())  # a launch registers in 30 s
    learned = learned_item(cloud)
    state = acquired_in_pool(cloud, pool_job())
    assert state["instance"]["boot"] == "ready" and state["instance"]["online_checked"] is True
    # acquire's DescribeInstanceInformation found it Online: any further request would fail here.
    faults.inject_api_error("ssm", "DescribeInstanceInformation", "AccessDeniedException", "no more", times=None)
    faults.inject_api_error("ec2", "DescribeInstances", "UnauthorizedOperation", "no more", times=None)
    started = time.monotonic()

    output = wait_online.handler(wait_event(state), cloud.context)

    # Online when acquire leased it: no boot time for the report's BootSeconds.
    assert output.pop("online_at") == state["instance"]["launched_epoch"]
    assert output == {"online": True, "checks": 0, "platform_type": "Linux", "agent_version": AGENT_VERSION}
    assert time.monotonic() - started < 1  # no sleep until the launch's learned time
    assert learned_item(cloud) == learned  # a ready member's "registration" is no registration time
    assert cloud.item(f"registration#{cloud.linux_ami}#t3.large#start") is None


def test_a_ready_member_acquire_did_not_check_is_checked_at_once(cloud: Cloud, agent: Agent) -> None:
    """An execution whose acquire ran before the check existed: one check, at once."""
    configure_pool(cloud, "warm", cap=1)
    ready_member(cloud)
    registration.learn(cloud.linux_ami, "t3.large", 30.0, None, time.time())
    state = acquired_in_pool(cloud, pool_job())
    for field in ("online_checked", "platform_type", "agent_version"):
        del state["instance"][field]
    started = time.monotonic()

    output = wait_online.handler(wait_event(state), cloud.context)

    assert output["online"] is True and output["checks"] == 1
    assert time.monotonic() - started < 1


def test_a_started_member_learns_the_start_time_apart_from_the_launch_time(
    cloud: Cloud, agent: Agent, quick_ec2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALCLOUD_SSM_RECONNECT_DELAY_SECONDS", "2")  # the agent is back 2 s after the start
    monkeypatch.setenv("LOCALCLOUD_TIME_SCALE", "1")
    configure_pool(cloud, "stopped", cap=1)
    ready_member(cloud)
    registration.learn(cloud.linux_ami, "t3.large", 30.0, None, time.time())
    launch_time = learned_item(cloud)
    state = acquired_in_pool(cloud, pool_job())
    assert state["instance"]["boot"] == "start"

    output = wait_online.handler(wait_event(state), cloud.context)

    assert output["online"] is True and output["checks"] >= 2  # no start time learned yet: checked every second
    start_time = cloud.item(f"registration#{cloud.linux_ami}#t3.large#start")
    assert start_time is not None and 0.5 <= start_time["seconds"] <= 3
    assert learned_item(cloud) == launch_time  # the launch's learned time is not the start's
    assert registration.learned(cloud.linux_ami, "t3.large", "start").seconds == start_time["seconds"]


def test_a_spot_instance_gone_while_awaited_is_an_interruption(
    cloud: Cloud, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 reclaimed it (anyone terminating it would do the same): SpotInterrupted, whose message says which
    instance, why and in which step, for acquire to count (errors.interruption_of reads it back from the Lambda's
    cause)."""
    from test_interruption import launched_instance

    monkeypatch.setattr(registration, "EC2_STATE_EVERY", 2.0)
    faults.never_register(count=1)
    job = make_job(input_artifact=None, configuration={})
    instance = launched_instance(cloud, job, "spot")
    faults.interrupt_spot(instance["instance_id"], warning=False, notice_seconds=0)  # the warning went unheard
    event = {"job_id": job["id"], "build": build_spec(cloud.linux_ami), "instance": instance}

    with pytest.raises(SpotInterrupted) as raised:
        wait_online.handler(event, cloud.context)

    lambda_cause = {"errorMessage": str(raised.value), "errorType": "SpotInterrupted", "stackTrace": []}
    details = errors.interruption_of({"Error": "SpotInterrupted", "Cause": json.dumps(lambda_cause)})
    assert details["instance_id"] == instance["instance_id"] and details["step"] == "WaitForSsmOnline"
    assert details["reason"].startswith("Server.SpotInstanceTermination") and details["at"]
