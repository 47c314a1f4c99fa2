"""Fixtures for the handler tests: an in-process moto cloud plus the emulator, with what the module's Terraform makes.

What Terraform produces is taken from Terraform, never copied (harness/rendered.py): EC2_ACTION_CONFIG is
modules/lambda_config rendered by Terraform, with the ids of the resources created here in moto; the SSM document is
modules/ssm_document_content rendered by Terraform; the action type's definition is modules/action_type's, read with
python-hcl2. Injected API errors are the emulator's (emulator.faults), answered in each service's own protocol.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id

from ec2_action import aws, config
from emulator import codepipeline, faults, patches
from emulator.ssm import agent as ssm_agent
from harness import rendered

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "ec2-build"
ACTION = {"category": "Build", "owner": "Custom", "provider": "EC2-Linux", "version": "1"}
ACTION_KEY = "build"  # the action's key in the module's `actions`
# Stand-ins, in the rendering, for the ids of the resources the `cloud` fixture creates in moto (new ones each test):
# the configuration is rendered once per session, and each stand-in replaced by its resource's id wherever Terraform
# put it.
CREATED = {
    "launch_templates": {
        "Linux": {"id": "lt-linux-created-by-the-fixture", "version": "1"},
        "Windows": {"id": "lt-windows-created-by-the-fixture", "version": "1"},
    },
    "subnet_ids": [
        "subnet-created-by-the-fixture-a",
        "subnet-created-by-the-fixture-b",
        "subnet-created-by-the-fixture-c",
    ],
    "security_group_ids": ["sg-created-by-the-fixture"],
    "state_machine_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:created-by-the-fixture",
}
# modules/lambda_config's inputs as the root module passes them for one Linux action (defaults applied).
CONFIG_VARIABLES: dict[str, Any] = {
    "name_prefix": STACK,
    "actions": {
        ACTION_KEY: {
            "category": ACTION["category"], "provider": ACTION["provider"], "versions": [ACTION["version"]],
            "image_id": None, "instance_type": "t3.large", "timeout_minutes": 60, "root_volume_size_gib": 30,
        }
    },
    "jobs_table_name": f"{STACK}-jobs",
    "document_name": f"{STACK}-run-build",
    "build_log_group_name": f"/{STACK}/builds",
    "allowed_image_ids": [],
    "allowed_image_owners": ["amazon", "self"],
    "allowed_instance_types": ["t3.*", "m6i.*"],
    "default_build_timeout_minutes": 60,
    "max_build_timeout_minutes": 480,
    "ssm_registration_timeout_minutes": 15,
    "poll_function_name": f"{STACK}-poll",
    "orphan_grace_minutes": 30,
    "pool_table_name": f"{STACK}-pool",
    "keeper_function_name": f"{STACK}-keeper",
    # The fixture's subnets are in zones a, b and c (_create_resources); the root module reads them from EC2.
    "subnet_zones": {subnet: f"{REGION}{zone}" for subnet, zone in zip(CREATED["subnet_ids"], "abc", strict=True)},
    **CREATED,
}  # fmt: skip


class LambdaContext:
    """What the handlers read from the Lambda context."""

    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-handler"

    def __init__(self, remaining_ms: int = 300_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _replace(value: Any, ids: dict[str, str], used: set[str]) -> Any:
    """value with every string in ids replaced by ids[string] (recording it in used), in lists and objects (keys
    too) as well."""
    if isinstance(value, str) and value in ids:
        used.add(value)
        return ids[value]
    if isinstance(value, list):
        return [_replace(item, ids, used) for item in value]
    if isinstance(value, dict):
        return {_replace(key, ids, used): _replace(item, ids, used) for key, item in value.items()}
    return value


@dataclass
class Cloud:
    created: dict[str, str]  # stand-in (CREATED) -> the id of the resource the fixture created in moto
    linux_ami: str
    windows_ami: str
    own_ami: str
    monkeypatch: pytest.MonkeyPatch
    context: LambdaContext = field(default_factory=LambdaContext)
    variables: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(CONFIG_VARIABLES)))
    settings: dict[str, Any] = field(default_factory=dict)  # EC2_ACTION_CONFIG, parsed

    def configure(self, **variables: Any) -> None:
        """Set EC2_ACTION_CONFIG to modules/lambda_config rendered by Terraform with these inputs changed (as a change
        of the module's variables would), the created resources' ids in place of their stand-ins; drop the cached
        parse."""
        self.variables.update(variables)
        used: set[str] = set()
        self.settings = _replace(rendered.lambda_config(self.variables), self.created, used)
        unused = {stand_in for stand_in in self.created if stand_in in json.dumps(self.variables)} - used
        assert not unused, f"modules/lambda_config no longer renders {sorted(unused)}: update CREATED"
        self.monkeypatch.setenv(config.ENV_VAR, json.dumps(self.settings))
        config.load.cache_clear()

    def action_variables(self, **changes: Any) -> dict[str, Any]:
        """The `actions` variable with the one action's attributes changed (versions, image_id, instance_type...)."""
        return {ACTION_KEY: {**self.variables["actions"][ACTION_KEY], **changes}}

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


def _create_resources() -> dict[str, str]:
    """The resources the functions use, created in moto; {stand-in in CREATED: the created resource's id}."""
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
    # One template per platform, as modules/builder makes them: the profile, the builders' network interface (the
    # launch's overrides give the subnet), instance tags in the metadata (the self-shutdown reads its deadline there).
    template_ids = {
        platform: ec2.create_launch_template(
            LaunchTemplateName=f"{STACK}-builder{suffix}",
            LaunchTemplateData={
                "IamInstanceProfile": {"Name": f"{STACK}-builder"},
                "MetadataOptions": {"HttpTokens": "required", "InstanceMetadataTags": "enabled"},
                "InstanceInitiatedShutdownBehavior": "terminate",
                "NetworkInterfaces": [
                    {
                        "DeviceIndex": 0,
                        "Groups": [group_id],
                        "AssociatePublicIpAddress": False,
                        "DeleteOnTermination": True,
                    }
                ],
            },
        )["LaunchTemplate"]["LaunchTemplateId"]
        for platform, suffix in (("Linux", ""), ("Windows", "-windows"))
    }
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=CONFIG_VARIABLES["jobs_table_name"],
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=CONFIG_VARIABLES["pool_table_name"],
        KeySchema=[{"AttributeName": "pool", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pool", "AttributeType": "S"},
            {"AttributeName": "id", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("ssm", region_name=REGION).create_document(
        Name=CONFIG_VARIABLES["document_name"], Content=rendered.ssm_document(), DocumentType="Command",
        DocumentFormat="JSON",
    )  # fmt: skip
    machine_arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=f"{STACK}-job",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-sfn",
    )["stateMachineArn"]
    created = {CREATED["state_machine_arn"]: machine_arn}
    created.update({CREATED["launch_templates"][platform]["id"]: template_ids[platform] for platform in template_ids})
    created.update(zip(CREATED["subnet_ids"], subnet_ids, strict=True))
    created.update(zip(CREATED["security_group_ids"], [group_id], strict=True))
    return created


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


@pytest.fixture
def quick_ec2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stops and starts take no AWS time in the local cloud (its default delays are AWS's typical ones)."""
    monkeypatch.setenv("LOCALCLOUD_START_DELAY_SECONDS", "0")
    monkeypatch.setenv("LOCALCLOUD_STOP_DELAY_SECONDS", "0")


@pytest.fixture(autouse=True)
def _no_faults_left_behind() -> Iterator[None]:
    """Faults are injected with the emulator's emulator.faults (inject_api_error...), whichever test injects them."""
    yield
    faults.clear()


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
    """A build spec as acquire outputs it (buildspec.validated)."""
    spec = {
        "image_id": image_id,
        "instance_type": "t3.large",
        "instance_types": ["t3.large"],
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
    action = cloud.variables["actions"][ACTION_KEY]
    # Every property modules/action_type registers, with its flags, and its artifact counts (read from the HCL).
    defaults = {name: action[name] for name in ("image_id", "instance_type")}
    definition = rendered.action_type_definition(defaults)
    client.create_custom_action_type(
        category=ACTION["category"], provider=ACTION["provider"], version=ACTION["version"],
        settings={"executionUrlTemplate": "https://console.aws.amazon.com/states/home#/v2/executions/details/"
                  "{ExternalExecutionId}"},
        **definition,
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
