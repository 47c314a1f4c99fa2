"""release (ReleaseInstance): its event is the whole state; the instance acquire returned is terminated by its id,
and when there is none (acquire failed or never ran), every instance tagged with the job's id."""

from typing import Any

from conftest import STACK, Cloud, make_job

from ec2_action.handlers import release


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
