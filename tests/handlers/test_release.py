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


def test_terminates_every_instance_of_the_job_and_nothing_else(cloud: Cloud) -> None:
    job = make_job()
    mine = sorted([run_instance(cloud, job["id"]), run_instance(cloud, job["id"])])
    cloud.client("ec2").stop_instances(InstanceIds=[mine[1]])
    other_job = run_instance(cloud, make_job()["id"])
    other_stack = run_instance(cloud, job["id"], stack="someone-else")

    assert release.handler({"job": job}, cloud.context) == {"terminated": mine}

    assert [state(cloud, i) for i in mine] == ["terminated", "terminated"]
    assert state(cloud, other_job) == "running"
    assert state(cloud, other_stack) == "running"


def test_is_idempotent(cloud: Cloud) -> None:
    job = make_job()
    run_instance(cloud, job["id"])
    release.handler({"job": job}, cloud.context)
    assert release.handler({"job": job}, cloud.context) == {"terminated": []}


def test_nothing_to_release_when_no_instance_was_launched(cloud: Cloud) -> None:
    assert release.handler({"job": make_job()}, cloud.context) == {"terminated": []}
