"""Fixtures for the handler unit tests: an in-process moto cloud with what the module's Terraform would create."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from ec2_action import aws, config
from emulator import codepipeline, patches
from emulator.ssm import agent as ssm_agent
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "ec2-build"
ROOT = Path(__file__).resolve().parents[2]
ACTION = {"category": "Build", "owner": "Custom", "provider": "EC2-Linux", "version": "1"}


class LambdaContext:
    """What the handlers read from the Lambda context."""

    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-handler"

    def __init__(self, remaining_ms: int = 300_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Cloud:
    settings: dict[str, Any]
    linux_ami: str
    windows_ami: str
    own_ami: str
    monkeypatch: pytest.MonkeyPatch
    context: LambdaContext = field(default_factory=LambdaContext)

    def configure(self, **changes: Any) -> None:
        """Change EC2_ACTION_CONFIG (as a Terraform variable change would) and drop the cached parse."""
        self.settings.update(changes)
        self.monkeypatch.setenv(config.ENV_VAR, json.dumps(self.settings))
        config.load.cache_clear()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def item(self, job_id: str) -> dict[str, Any] | None:
        return (
            boto3.resource("dynamodb", region_name=REGION)
            .Table(self.settings["jobs_table"])
            .get_item(Key={"job_id": job_id}, ConsistentRead=True)
            .get("Item")
        )


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


def render_document() -> str:
    """The SSM document as Terraform renders it (templatefile with the scripts' lines)."""
    template = (ROOT / "ssm" / "run-build.json.tftpl").read_text()
    linux = (ROOT / "ssm" / "linux" / "run-build.sh").read_text().splitlines()
    windows = (ROOT / "ssm" / "windows" / "run-build.ps1").read_text().splitlines()
    return template.replace("${linux_script_lines}", json.dumps(linux)).replace(
        "${windows_script_lines}", json.dumps(windows)
    )


def _create_resources() -> dict[str, Any]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate("abc")
    ]
    group_id = ec2.create_security_group(GroupName="builders", Description="builders", VpcId=vpc_id)["GroupId"]
    iam = boto3.client("iam", region_name=REGION)
    iam.create_instance_profile(InstanceProfileName=f"{STACK}-builder")
    template_id = ec2.create_launch_template(
        LaunchTemplateName=f"{STACK}-builder",
        LaunchTemplateData={
            "IamInstanceProfile": {"Name": f"{STACK}-builder"},
            "MetadataOptions": {"HttpTokens": "required"},
            "InstanceInitiatedShutdownBehavior": "terminate",
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=f"{STACK}-jobs",
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("ssm", region_name=REGION).create_document(
        Name=f"{STACK}-run-build", Content=render_document(), DocumentType="Command", DocumentFormat="JSON"
    )
    machine_arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=f"{STACK}-job",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-sfn",
    )["stateMachineArn"]
    return {
        "stack": STACK,
        "actions": [
            {
                "category": ACTION["category"],
                "owner": ACTION["owner"],
                "provider": ACTION["provider"],
                "versions": [ACTION["version"]],
                "defaults": {"ImageId": None, "InstanceType": "t3.large", "TimeoutMinutes": 60},
            }
        ],
        "state_machine_arn": machine_arn,
        "jobs_table": f"{STACK}-jobs",
        "document_name": f"{STACK}-run-build",
        "build_log_group": f"/{STACK}/builds",
        "launch_template_id": template_id,
        "subnet_ids": subnet_ids,
        "security_group_ids": [group_id],
        "allowed_image_ids": [],
        "allowed_image_owners": ["amazon", "self"],
        "allowed_instance_types": ["t3.*", "m6i.*"],
        "default_timeout_minutes": 60,
        "max_timeout_minutes": 480,
        "ssm_registration_timeout_seconds": 900,
        "poll_function_name": f"{STACK}-poll",
        "orphan_grace_seconds": 1800,
    }


def _amazon_ami(platform: str | None) -> str:
    """An AMI owned by Amazon (moto's ~1,300 default AMIs take seconds to load, so they are not loaded)."""
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    ami_id = random_ami_id()
    backend.amis[ami_id] = Ami(
        backend, ami_id, name=f"amazon-{platform or 'linux'}", owner_id="801119661308", owner_alias="amazon",
        public=True, platform=platform, root_device_type="ebs", root_device_name="/dev/sda1",
    )  # fmt: skip
    return ami_id


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """moto with the module's resources; Step Functions really executes (the ASL interpreter)."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    patches.apply()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        aws.reset()
        own = boto3.client("ec2", region_name=REGION).register_image(Name="own", RootDeviceName="/dev/xvda")
        cloud = Cloud(_create_resources(), _amazon_ami(None), _amazon_ami("windows"), own["ImageId"], monkeypatch)
        cloud.configure()
        yield cloud
        aws.reset()
        config.load.cache_clear()


@dataclass
class _Fault:
    code: str
    message: str
    times: int | None

    def __call__(self, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        """A botocore before-call hook: answer with an AWS error instead of calling the service."""
        if self.times is not None:
            if self.times <= 0:
                return None
            self.times -= 1
        http = SimpleNamespace(status_code=400, headers={}, content=b"")
        return http, {"Error": {"Code": self.code, "Message": self.message}, "ResponseMetadata": {}}


@pytest.fixture
def inject_error() -> Callable[..., None]:
    """inject_error("ec2", "RunInstances", code, message, times=1): the handlers' next calls fail with that error."""

    def inject(service: str, operation: str, code: str, message: str, times: int | None = 1) -> None:
        client = aws.client(service)
        event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        client.meta.events.register(event, _Fault(code, message, times))

    return inject


def make_job(**overrides: Any) -> dict[str, Any]:
    """A job as the poller hands it to the state machine (DESIGN.md, "State machine input")."""
    job_id = str(uuid.uuid4())
    job = {
        "id": job_id,
        "action": dict(ACTION),
        "configuration": {"Command": "make test"},
        "pipeline": {
            "name": "app",
            "arn": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:app",
            "execution_id": str(uuid.uuid4()),
            "stage": "Build",
            "action": "Build",
            "action_execution_id": str(uuid.uuid4()),
        },
        "input_artifact": {"name": "Source", "bucket": "artifacts-bucket", "key": "app/Source/abc.zip"},
        "output_artifact": None,
        "encryption_key_id": None,
    }
    job.update(overrides)
    return job


def build_spec(image_id: str, **overrides: Any) -> dict[str, Any]:
    """A build spec as validate outputs it."""
    spec = {
        "image_id": image_id,
        "instance_type": "t3.large",
        "platform": "Linux",
        "root_device_name": "/dev/xvda",
        "root_volume_gib": 30,
        "timeout_minutes": 60,
        "command_timeout_seconds": 3600,
        "task_timeout_seconds": 4500,
        "command": "make test",
        "working_directory": "",
        "output_artifact_path": "",
    }
    spec.update(overrides)
    return spec


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Pipeline:
    """A CodePipeline pipeline (S3 source -> our build action) in the local cloud's CodePipeline."""

    client: Any
    name: str = "app"

    def start(self) -> str:
        """Start an execution; returns the id of the build action's job once CodePipeline queued it."""
        execution_id = self.client.start_pipeline_execution(name=self.name)["pipelineExecutionId"]
        return wait_for(lambda: self._queued_job(execution_id), what="the build job")

    def _queued_job(self, execution_id: str) -> str | None:
        found = [job for job in codepipeline.jobs() if job.run.execution_id == execution_id]
        return found[0].id if found else None

    def results(self, job_id: str | None = None) -> list[Any]:
        return codepipeline.results(job_id=job_id)

    def continuation_of(self, job_id: str) -> str:
        """The id of the job CodePipeline created after job_id was closed with a continuation token."""
        first = next(job for job in codepipeline.jobs() if job.id == job_id)
        return wait_for(lambda: next((j.id for j in first.run.jobs if j.id != job_id), None), what="continuation")


@pytest.fixture
def pipeline(cloud: Cloud) -> Iterator[Pipeline]:
    client = cloud.client("codepipeline")
    client.create_custom_action_type(
        category=ACTION["category"], provider=ACTION["provider"], version=ACTION["version"],
        settings={"executionUrlTemplate": "https://console.aws.amazon.com/states/home#/v2/executions/details/"
                  "{ExternalExecutionId}"},
        configurationProperties=[
            {"name": name, "required": name == "Command", "key": False, "secret": False}
            for name in ("ImageId", "InstanceType", "Command", "WorkingDirectory", "OutputArtifactPath")
        ],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )  # fmt: skip
    s3 = cloud.client("s3")
    for bucket in ("source-bucket", "artifact-bucket"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="source-bucket", Key="src.zip", Body=b"PK\x05\x06" + bytes(18))
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}}]}
    role = cloud.client("iam").create_role(RoleName="pipeline", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    role = role["Arn"]
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": "source-bucket", "S3ObjectKey": "src.zip", "PollForSourceChanges": "false"},
        "outputArtifacts": [{"name": "SourceArtifact"}],
    }
    build = {
        "name": "Build",
        "actionTypeId": ACTION,
        "configuration": {"Command": "make test", "ImageId": cloud.linux_ami},
        "inputArtifacts": [{"name": "SourceArtifact"}],
    }
    client.create_pipeline(
        pipeline={
            "name": "app",
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": "artifact-bucket"},
            "stages": [{"name": "Source", "actions": [source]}, {"name": "Build", "actions": [build]}],
        }
    )
    yield Pipeline(client)
    codepipeline.stop()


@dataclass
class Agent:
    """The local cloud's SSM Agent; `events` collects its status-change events as EventBridge would deliver them."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def sink(self, source: str, detail_type: str, detail: dict[str, Any], account: str, region: str,
             resources: list[str] | None = None) -> None:  # fmt: skip
        self.events.append({"source": source, "detail-type": detail_type, "account": account, "region": region,
                            "resources": resources or [], "detail": detail})  # fmt: skip

    def final_event(self, command_id: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next(
                (e for e in self.events if e["detail"].get("command-id") == command_id
                 and e["detail-type"] == "EC2 Command Invocation Status-change Notification"
                 and e["detail"].get("status") in ("Success", "Failed", "TimedOut", "Cancelled")),
                None,
            )  # fmt: skip

        return wait_for(find, timeout=30, what=f"the end of command {command_id}")


@pytest.fixture
def agent(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    monkeypatch.setenv("LOCALCLOUD_SSM_REGISTRATION_DELAY", "0")
    found = Agent()
    ssm_agent.set_event_sink(found.sink)
    yield found
    ssm_agent.set_event_sink(None)
    ssm_agent.reset()


@pytest.fixture
def task_token(cloud: Cloud) -> Callable[[str], tuple[str, str]]:
    """token(name): start an execution that waits for a task token (as RunBuildCommand does); (token, execution)."""
    queue = cloud.client("sqs").create_queue(QueueName="tokens")["QueueUrl"]
    waiting = {
        "StartAt": "RunBuildCommand",
        "States": {
            "RunBuildCommand": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 600,
                "End": True,
            }
        },
    }
    sfn = cloud.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="waits-for-token", definition=json.dumps(waiting), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
    )["stateMachineArn"]

    def start(name: str) -> tuple[str, str]:
        execution = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]
        sqs = cloud.client("sqs")
        message = wait_for(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), what="the task token")[0]
        return json.loads(message["Body"])["token"], execution

    return start
