"""release (ReleaseInstance): its event is the whole state; the instance acquire returned is terminated by its id,
and when there is none (acquire failed or never ran), every instance tagged with the job's id."""

import json
import time
from typing import Any

import pytest
from conftest import STACK, Cloud, make_job, wait_for
from pool_fixtures import acquired, configure_pool, pool_job
from pool_fixtures import released as pool_released

from ec2_action import aws, buildspec, config, queue, registry
from ec2_action.handlers import acquire, enqueue, release


def run_instance(cloud: Cloud, job_id: str, stack: str = STACK) -> str:
    tags = [{"Key": "ec2-action:job-id", "Value": job_id}, {"Key": "ec2-action:stack", "Value": stack}]
    return cloud.client("ec2").run_instances(
        ImageId=cloud.linux_ami,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]


def state(cloud: Cloud, instance_id: str) -> str:
    reservations = cloud.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def released(cloud: Cloud, execution_state: dict[str, Any]) -> dict[str, Any]:
    """ReleaseInstance's Parameters: {"state.$": "$"} (asl/build-job.asl.json)."""
    return release.handler({"state": execution_state}, cloud.context)


def test_the_instance_acquire_returned_is_terminated_by_its_id(cloud: Cloud) -> None:
    job = make_job()
    mine = run_instance(cloud, job["id"])
    other_of_the_job = run_instance(cloud, job["id"])  # not the one acquire returned: e.g. a lost launch's answer
    error = {"Error": "States.Timeout", "Cause": ""}

    execution_state = {"job": job, "instance": {"instance_id": mine, "subnet_id": "subnet-1"}, "error": error}
    assert released(cloud, execution_state) == {"terminated": [mine]}

    assert state(cloud, mine) == "terminated"
    assert state(cloud, other_of_the_job) == "running"  # by id only: no search (the reaper finds strays)


def test_without_an_instance_every_instance_tagged_with_the_job_is_terminated_and_nothing_else(cloud: Cloud) -> None:
    job = make_job()
    mine = sorted([run_instance(cloud, job["id"]), run_instance(cloud, job["id"])])
    cloud.client("ec2").stop_instances(InstanceIds=[mine[1]])
    other_job = run_instance(cloud, make_job()["id"])
    other_stack = run_instance(cloud, job["id"], stack="someone-else")
    acquire_failed = {
        "job": job,
        "error": {"Error": "Lambda.Unknown", "Cause": "crashed"},
        "failed_step": "AcquireInstance",
    }

    assert released(cloud, acquire_failed) == {"terminated": mine}

    assert [state(cloud, i) for i in mine] == ["terminated", "terminated"]
    assert state(cloud, other_job) == "running"
    assert state(cloud, other_stack) == "running"


def test_is_idempotent(cloud: Cloud) -> None:
    job = make_job()
    instance_id = run_instance(cloud, job["id"])
    by_id = {"job": job, "instance": {"instance_id": instance_id}}
    assert released(cloud, by_id) == {"terminated": [instance_id]}
    assert released(cloud, by_id) == {"terminated": [instance_id]}  # terminating a terminated instance is no error
    assert state(cloud, instance_id) == "terminated"

    assert released(cloud, {"job": job}) == {"terminated": []}  # by tag: no live instance left


def test_nothing_to_release_when_no_instance_was_launched(cloud: Cloud) -> None:
    assert released(cloud, {"job": make_job()}) == {"terminated": []}


def test_an_execution_of_the_previous_definition_still_releases_by_tag(cloud: Cloud) -> None:
    """Its ReleaseInstance passed {"job.$": "$.job"}: an execution in flight across an upgrade."""
    job = make_job()
    instance_id = run_instance(cloud, job["id"])
    assert release.handler({"job": job}, cloud.context) == {"terminated": [instance_id]}


# --- capacity: members of the registry (DESIGN.md, "Instance pools") -------------------------------------------------

state_of = state  # an instance's EC2 state (below, `state` names the execution's)


def member(member_id: str) -> registry.Member | None:
    return registry.member("build", member_id)


def test_an_ephemeral_member_is_terminated_and_its_slot_freed(cloud: Cloud) -> None:
    state = acquired(cloud, pool_job(ImageId=cloud.linux_ami))  # the fixture's action: ephemeral
    instance = state["instance"]
    assert pool_released(cloud, state) == {"terminated": [instance["instance_id"]]}
    assert state_of(cloud, instance["instance_id"]) == "terminated"
    assert member(instance["member_id"]) is None and registry.counter("build").instances == 0


def test_a_warm_member_goes_back_to_the_pool_running(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2)
    state = acquired(cloud, pool_job())
    instance_id, member_id = state["instance"]["instance_id"], state["instance"]["member_id"]

    assert pool_released(cloud, state) == {"terminated": [], "returned": [instance_id]}

    returned = member(member_id)
    assert (returned.state, returned.lease_job, returned.builds) == ("ready", None, 1)
    assert returned.idle_since is not None and state_of(cloud, instance_id) == "running"
    assert registry.counter("build").instances == 1


def test_a_stopped_pools_member_is_stopped(cloud: Cloud, quick_ec2: None) -> None:
    configure_pool(cloud, "stopped", cap=2)
    state = acquired(cloud, pool_job())
    instance_id, member_id = state["instance"]["instance_id"], state["instance"]["member_id"]

    assert pool_released(cloud, state) == {"terminated": [], "stopped": [instance_id]}

    assert member(member_id).state == "stopping"  # the keeper marks it ready once EC2 says stopped
    assert wait_for(lambda: state_of(cloud, instance_id) == "stopped", what="the stop")


def test_a_hibernating_pools_member_hibernates(cloud: Cloud, quick_ec2: None) -> None:
    configure_pool(cloud, "stopped", cap=2, hibernate=True)
    state = acquired(cloud, pool_job())
    instance_id = state["instance"]["instance_id"]
    requests = Requests(aws.client("ec2"), "ec2")

    assert pool_released(cloud, state)["stopped"] == [instance_id]

    [stop] = requests.of("StopInstances")
    assert stop == {"InstanceIds": [instance_id], "Hibernate": True}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"error": {"Error": "States.Timeout", "Cause": ""}}, "the build failed or timed out"),
        ({"command": {"status": "Failed", "response_code": 2}}, "the build failed or timed out"),
        ({"command": {"status": "Success", "response_code": 0, "retire": "the reset command exited 1"}},
         "the reset command exited 1"),
    ],
)  # fmt: skip
def test_a_failed_build_or_reset_retires_the_member(
    cloud: Cloud, changes: dict[str, Any], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_pool(cloud, "warm", cap=2)
    state = acquired(cloud, pool_job())
    instance_id, member_id = state["instance"]["instance_id"], state["instance"]["member_id"]
    capsys.readouterr()

    assert pool_released(cloud, state, **changes) == {"terminated": [], "retired": [member_id]}

    assert state_of(cloud, instance_id) == "terminated"
    assert member(member_id) is None and registry.counter("build").instances == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["reason"] for line in lines if line.get("message") == "member retired"] == [reason]


def test_a_member_is_recycled_after_max_builds(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2, max_builds=2)
    first = acquired(cloud, pool_job())
    assert "returned" in pool_released(cloud, first)
    second = acquired(cloud, pool_job())
    assert second["instance"]["member_id"] == first["instance"]["member_id"]  # its second build

    assert pool_released(cloud, second)["retired"] == [first["instance"]["member_id"]]
    assert state_of(cloud, first["instance"]["instance_id"]) == "terminated"


def test_a_member_whose_pool_changed_configuration_is_rotated(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2)
    state = acquired(cloud, pool_job())
    # A new version of the Linux launch template was deployed during the build.
    templates = cloud.variables["launch_templates"]
    cloud.configure(launch_templates={**templates, "Linux": {**templates["Linux"], "version": "2"}})

    assert pool_released(cloud, state)["retired"] == [state["instance"]["member_id"]]
    assert state_of(cloud, state["instance"]["instance_id"]) == "terminated"


def test_release_is_idempotent_for_members(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2)
    returned = acquired(cloud, pool_job())
    retired = acquired(cloud, pool_job())
    failed = {"error": {"Error": "States.Timeout", "Cause": ""}}
    assert "returned" in pool_released(cloud, returned)
    assert "retired" in pool_released(cloud, retired, **failed)

    assert pool_released(cloud, returned) == {"terminated": []}  # a retry: nothing is done twice
    assert pool_released(cloud, retired, **failed) == {"terminated": []}
    assert member(returned["instance"]["member_id"]).builds == 1
    assert registry.counter("build").instances == 1


def test_release_serves_the_queue_inline(cloud: Cloud, task_token: Any) -> None:
    configure_pool(cloud, "warm", cap=1)
    running = acquired(cloud, pool_job())
    waiting = acquired(cloud, pool_job())
    token, arn = task_token(waiting["job"]["id"])
    enqueue.handler({"task_token": token, "job": waiting["job"], "build": waiting["build"], "execution_arn": arn},
                    cloud.context)  # fmt: skip

    output = pool_released(cloud, running)

    assert output["granted"] == [waiting["job"]["id"]]
    sfn = cloud.client("stepfunctions")
    done = wait_for(lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e, what="grant")
    assert json.loads(done["output"])["member_id"] == running["instance"]["member_id"]
    assert registry.counter("build") == registry.Counter(instances=1, queued=0)


def test_a_job_whose_wait_failed_leaves_the_queue(cloud: Cloud) -> None:
    action = configure_pool(cloud, "warm", cap=1)
    acquired(cloud, pool_job())
    waiting = acquired(cloud, pool_job())
    queue.enqueue(action, waiting["job"]["id"], "arn", "token", deadline=time.time() + 60, config="c", kind="warm")
    wait_failed = {**waiting, "error": {"Error": "States.Timeout", "Cause": ""}, "failed_step": "WaitForCapacity"}

    assert pool_released(cloud, wait_failed) == {"terminated": [], "dropped": True}
    assert queue.entries("build") == [] and registry.counter("build").queued == 0


def test_without_a_member_the_jobs_leased_members_are_retired(cloud: Cloud) -> None:
    """acquire reserved a slot and launched, then failed before returning (e.g. timed out)."""
    action = configure_pool(cloud, "warm", cap=2)
    job = pool_job()
    reserved = registry.take(action, job["id"], None, "c")
    assert reserved is not None
    launched = acquire.materialise(config.load(), action, job, buildspec.validated(config.load(), job, cloud.context),
                                   reserved)  # fmt: skip
    acquire_failed = {"job": job, "error": {"Error": "Lambda.Unknown", "Cause": ""}, "failed_step": "AcquireInstance"}

    assert pool_released(cloud, acquire_failed) == {"terminated": [], "retired": [reserved.id]}
    assert state_of(cloud, launched["instance_id"]) == "terminated"
    assert registry.counter("build").instances == 0


def test_a_retired_member_below_the_pools_minimum_nudges_the_keeper(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=2, min_ready=1)
    state = acquired(cloud, pool_job())
    requests = Requests(aws.client("lambda"), "lambda")
    failed = {"error": {"Error": "States.Timeout", "Cause": ""}}

    pool_released(cloud, state, **failed)

    [invoke] = requests.of("Invoke")
    assert (invoke["FunctionName"], invoke["InvocationType"]) == (cloud.settings["keeper_function_name"], "Event")
    assert json.loads(invoke["Payload"])["action"] == "build"


def test_a_retired_member_with_the_minimum_ready_nudges_nobody(cloud: Cloud) -> None:
    configure_pool(cloud, "warm", cap=3, min_ready=1)
    kept, state = acquired(cloud, pool_job()), acquired(cloud, pool_job())
    pool_released(cloud, kept)  # ready: the pool's minimum
    requests = Requests(aws.client("lambda"), "lambda")

    pool_released(cloud, state, error={"Error": "States.Timeout", "Cause": ""})

    assert requests.of("Invoke") == []


class Requests:
    """The requests one client sends (botocore's before-parameter-build event; the requests go through)."""

    def __init__(self, client: Any, service: str) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register(f"before-parameter-build.{service}", self.record)

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.made.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.made if name == operation]
