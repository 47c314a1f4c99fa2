"""Injected faults fire as configured, in each service's own error format, and clear."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator import faults, server

LINUX_AMI = "ami-1e749f67"  # one of moto's built-in AMIs
DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "echo",
    "mainSteps": [{"action": "aws:runShellScript", "name": "Echo", "inputs": {"runCommand": ["echo ran"]}}],
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALCLOUD_TIME_SCALE", "0.02")
        cloud = server.start()
        yield cloud
        cloud.stop()


@pytest.fixture(autouse=True)
def no_faults_left() -> Iterator[None]:
    yield
    faults.clear()


@pytest.fixture(scope="module")
def aws(cloud: server.LocalCloud) -> dict[str, Any]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)
    no_retries = Config(retries={"total_max_attempts": 1})
    names = ("ec2", "iam", "ssm", "lambda")
    clients = {n: session.client(n, endpoint_url=cloud.endpoint, config=no_retries) for n in names}
    clients["iam"].create_role(RoleName="builder", AssumeRolePolicyDocument="{}")
    clients["iam"].create_instance_profile(InstanceProfileName="builder")
    clients["iam"].add_role_to_instance_profile(InstanceProfileName="builder", RoleName="builder")
    clients["ssm"].create_document(Name="echo", Content=json.dumps(DOCUMENT), DocumentType="Command")
    return clients


def _run(aws: dict[str, Any]) -> str:
    reservation = aws["ec2"].run_instances(
        ImageId=LINUX_AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "builder"}
    )
    return reservation["Instances"][0]["InstanceId"]


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return error.value.response["Error"]["Code"], error.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _wait_online(aws: dict[str, Any], instance_id: str, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        filters = [{"Key": "InstanceIds", "Values": [instance_id]}]
        if aws["ssm"].describe_instance_information(Filters=filters)["InstanceInformationList"]:
            return True
        time.sleep(0.05)
    return False


def test_api_errors_fire_the_given_number_of_times(aws):
    faults.inject_api_error("ec2", "RunInstances", "InsufficientInstanceCapacity", "No capacity.", times=1)
    faults.inject_api_error("ec2", "TerminateInstances", "RequestLimitExceeded", "Slow down.", times=None, status=503)

    with pytest.raises(ClientError) as capacity:
        _run(aws)
    instance_id = _run(aws)  # the second call goes through
    for _ in range(2):
        with pytest.raises(ClientError) as throttled:
            aws["ec2"].terminate_instances(InstanceIds=[instance_id])
        assert _code(throttled) == ("RequestLimitExceeded", 503)
    faults.clear()
    aws["ec2"].terminate_instances(InstanceIds=[instance_id])

    assert _code(capacity) == ("InsufficientInstanceCapacity", 400)
    assert capacity.value.response["Error"]["Message"] == "No capacity."


def test_api_errors_in_a_json_protocol_service(aws):
    faults.inject_api_error("ssm", "DescribeInstanceInformation", "ThrottlingException", "Rate exceeded", status=400)

    with pytest.raises(ClientError) as error:
        aws["ssm"].describe_instance_information()

    assert _code(error) == ("ThrottlingException", 400)
    assert aws["ssm"].describe_instance_information()["InstanceInformationList"] == []


def test_never_register_by_count_and_by_predicate(aws):
    faults.never_register(count=1)
    lost = _run(aws)
    registered = _run(aws)
    faults.never_register(lambda instance: instance.id == registered)

    assert not _wait_online(aws, lost, seconds=1)
    assert not _wait_online(aws, registered, seconds=1)
    faults.clear()
    assert _wait_online(aws, registered)
    assert not _wait_online(aws, lost, seconds=0.5)  # the count is taken at launch: that instance stays lost


def test_hung_commands_stay_in_progress_until_cancelled(aws):
    instance_id = _run(aws)
    assert _wait_online(aws, instance_id)
    faults.hang_commands(count=1)

    hung = aws["ssm"].send_command(InstanceIds=[instance_id], DocumentName="echo")["Command"]["CommandId"]
    normal = aws["ssm"].send_command(InstanceIds=[instance_id], DocumentName="echo")["Command"]["CommandId"]
    time.sleep(0.5)

    def status(command_id: str) -> str:
        return aws["ssm"].get_command_invocation(CommandId=command_id, InstanceId=instance_id)["Status"]

    assert (status(hung), status(normal)) == ("InProgress", "Success")
    aws["ssm"].cancel_command(CommandId=hung)
    assert status(hung) == "Cancelled"


def test_crash_lambda(aws):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 'ok'\n")
    role = aws["iam"].create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws["lambda"].create_function(
        FunctionName="fragile",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    faults.crash_lambda("fragile", times=1)

    crashed = aws["lambda"].invoke(FunctionName="fragile")
    healthy = aws["lambda"].invoke(FunctionName="fragile")

    assert crashed["FunctionError"] == "Unhandled"
    assert json.loads(crashed["Payload"].read())["errorType"] == "LocalCloudInjectedCrash"
    assert "FunctionError" not in healthy
    assert json.loads(healthy["Payload"].read()) == "ok"


def test_kill_lambda_after_a_served_call(aws):
    """The call takes effect, the code after it never runs, and the invocation ends as a dead runtime does."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "app.py",
            "import boto3\n"
            "def handler(event, context):\n"
            "    ec2 = boto3.client('ec2')\n"
            "    ec2.create_tags(Resources=[event['vpc']], Tags=[{'Key': 'step', 'Value': 'one'}])\n"
            "    ec2.create_tags(Resources=[event['vpc']], Tags=[{'Key': 'after', 'Value': 'two'}])\n"
            "    return 'finished'\n",
        )
    role = aws["iam"].create_role(RoleName="dies", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws["lambda"].create_function(
        FunctionName="mortal",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    vpc = aws["ec2"].create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    faults.kill_lambda_after("mortal", "ec2", "CreateTags", times=1)
    faults.kill_lambda_after("someone-else", "ec2", "DescribeVpcs", times=None)  # other functions' calls: no effect

    killed = aws["lambda"].invoke(FunctionName="mortal", Payload=json.dumps({"vpc": vpc}))

    assert killed["FunctionError"] == "Unhandled"
    assert json.loads(killed["Payload"].read())["errorType"] == "Runtime.ExitError"
    tags = aws["ec2"].describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]
    assert {t["Key"] for t in tags} == {"step"}  # the first call was served, the second never made
    aws["ec2"].describe_vpcs(VpcIds=[vpc])  # a call from outside any function is never a kill

    again = aws["lambda"].invoke(FunctionName="mortal", Payload=json.dumps({"vpc": vpc}))
    assert json.loads(again["Payload"].read()) == "finished"  # a new execution environment, the fault spent
