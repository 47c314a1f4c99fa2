"""The module applied into the local cloud, and pipeline runs against it.

Nothing on the path under test is short-circuited: Terraform applies an example root into the local cloud, the state
machine that runs is the one Terraform created, the Lambdas run from the zips Terraform uploaded and the build
script is the SSM document Terraform created. Tests only add pipelines (user-side configuration) and read results.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from emulator import codepipeline, metrics, server
from harness.terraform import REPO_ROOT, TerraformRoot

EXAMPLE = REPO_ROOT / "examples" / "basic-linux"
STACK_TAG = "ec2-action:stack"
JOB_TAG = "ec2-action:job-id"
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")


def zip_bytes(files: Mapping[str, str | bytes]) -> bytes:
    """A zip archive holding files (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zip_tree(directory: Path) -> bytes:
    """The files under directory as a zip, each with its Unix mode (an executable stays executable), as `zip -r` or a
    source action zips a checkout."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


@dataclass
class PipelineRun:
    """What one pipeline execution did, read back from the local cloud's APIs once it ended."""

    pipeline_name: str
    execution_id: str
    status: str
    started: float
    ended: float
    jobs: list[codepipeline.Job]
    results: list[codepipeline.JobResult]
    state_machine_executions: list[dict[str, Any]]
    instances: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final_result(self) -> codepipeline.JobResult | None:
        """The result that ended the action: the last one without a continuation token."""
        finals = [result for result in self.results if not result.continuation_token]
        return finals[-1] if finals else None

    @property
    def live_instances(self) -> list[dict[str, Any]]:
        return [i for i in self.instances if i["State"]["Name"] in LIVE_STATES]


@dataclass
class Deployment:
    """An example root applied into a running local cloud."""

    cloud: server.LocalCloud
    terraform: TerraformRoot
    outputs: dict[str, Any]
    variables: dict[str, Any] = field(default_factory=dict)  # what it was applied with (region included)

    @classmethod
    def apply(
        cls,
        cloud: server.LocalCloud,
        work_dir: Path,
        example: Path = EXAMPLE,
        variables: Mapping[str, Any] | None = None,
    ) -> Deployment:
        terraform = TerraformRoot(example, work_dir, env=cloud.env())
        terraform.init()
        applied_with = {"region": cloud.region, **(variables or {})}
        terraform.apply(applied_with)
        return cls(cloud, terraform, terraform.outputs(), applied_with)

    def client(self, service: str) -> Any:
        """A client of the test itself: its requests are not the deployed system's, the benchmark leaves them out."""
        return boto3.client(
            service,
            endpoint_url=self.cloud.endpoint,
            region_name=self.cloud.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(user_agent_appid=metrics.OBSERVER_APP_ID),
        )

    @property
    def action(self) -> dict[str, str]:
        """The example's action type id: category, owner, provider, version."""
        return dict(self.outputs["action_type_id"])

    def create_pipeline(
        self,
        name: str,
        configuration: Mapping[str, str],
        *,
        input_artifact: bool = True,
        output_artifact: bool = True,
    ) -> str:
        """A pipeline: an S3 source stage, then our action with configuration; returns its name."""
        source_key = f"sources/{name}.zip"
        build_action: dict[str, Any] = {
            "name": "BuildOnEC2",
            "actionTypeId": self.action,
            "runOrder": 1,
            "configuration": dict(configuration),
            "inputArtifacts": [{"name": "source"}] if input_artifact else [],
            "outputArtifacts": [{"name": "built"}] if output_artifact else [],
        }
        source_action = {
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "runOrder": 1,
            "configuration": {
                "S3Bucket": self.outputs["source_bucket"],
                "S3ObjectKey": source_key,
                "PollForSourceChanges": "false",
            },
            "outputArtifacts": [{"name": "source"}],
        }
        self.client("codepipeline").create_pipeline(
            pipeline={
                "name": name,
                "roleArn": self.outputs["pipeline_role_arn"],
                "artifactStore": {
                    "type": "S3",
                    "location": self.outputs["artifact_bucket"],
                    "encryptionKey": {"id": self.outputs["artifact_kms_key_arn"], "type": "KMS"},
                },
                "stages": [
                    {"name": "Source", "actions": [source_action]},
                    {"name": "Build", "actions": [build_action]},
                ],
            }
        )
        return name

    def upload_source(self, pipeline_name: str, files: Mapping[str, str | bytes] | bytes) -> None:
        """The pipeline's source: files (name -> content), or a zip as it is (e.g. zip_tree's)."""
        key = self.source_key(pipeline_name)
        body = files if isinstance(files, bytes) else zip_bytes(files)
        self.client("s3").put_object(Bucket=self.outputs["source_bucket"], Key=key, Body=body)

    def source_key(self, pipeline_name: str) -> str:
        stages = self.client("codepipeline").get_pipeline(name=pipeline_name)["pipeline"]["stages"]
        return stages[0]["actions"][0]["configuration"]["S3ObjectKey"]

    def start(self, pipeline_name: str) -> str:
        return self.client("codepipeline").start_pipeline_execution(name=pipeline_name)["pipelineExecutionId"]

    def wait(self, pipeline_name: str, execution_id: str, started: float, timeout: float = 240) -> PipelineRun:
        """Block until the pipeline execution ends, then collect what happened."""
        execution = codepipeline.wait_for_execution(pipeline_name, execution_id, timeout=timeout)
        return self.collect(pipeline_name, execution_id, execution.status, started)

    def run(
        self, pipeline_name: str, files: Mapping[str, str | bytes] | bytes | None = None, timeout: float = 240
    ) -> PipelineRun:
        """Upload a source (a default one if None), start the pipeline and wait for its end."""
        self.upload_source(pipeline_name, files if files is not None else {"README.md": "hello\n"})
        started = time.time()
        return self.wait(pipeline_name, self.start(pipeline_name), started, timeout)

    def collect(self, pipeline_name: str, execution_id: str, status: str, started: float) -> PipelineRun:
        jobs = [
            job
            for job in codepipeline.jobs(region=self.cloud.region)
            if job.run.pipeline_name == pipeline_name and job.run.execution_id == execution_id
        ]
        job_ids = {job.id for job in jobs}
        results = [r for r in codepipeline.results(region=self.cloud.region) if r.job_id in job_ids]
        executions = self.state_machine_executions(job_ids)
        return PipelineRun(
            pipeline_name=pipeline_name,
            execution_id=execution_id,
            status=status,
            started=started,
            ended=time.time(),
            jobs=jobs,
            results=results,
            state_machine_executions=executions,
            instances=self.instances(job_ids, self.acquired_instance_ids(executions)),
        )

    def state_machine_executions(self, job_ids: set[str]) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        paginator = sfn.get_paginator("list_executions")
        pages = paginator.paginate(stateMachineArn=self.outputs["state_machine_arn"])
        return [e for page in pages for e in page["executions"] if e["name"] in job_ids]

    def acquired_instance_ids(self, executions: list[dict[str, Any]]) -> set[str]:
        """The instances the executions' AcquireInstance steps handed their jobs (a pooled instance carries no job's
        tag: it serves one job after another)."""
        sfn = self.client("stepfunctions")
        found = set()
        for execution in executions:
            history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
            for event in history:
                details = event.get("stateExitedEventDetails") or {}
                if details.get("name") == "AcquireInstance" and details.get("output"):
                    instance = json.loads(details["output"]).get("instance") or {}
                    if instance.get("instance_id"):
                        found.add(instance["instance_id"])
        return found

    def instances(self, job_ids: set[str] | None = None, instance_ids: set[str] = frozenset()) -> list[dict[str, Any]]:
        """Builder instances (any state) launched by this stack; with job_ids, only those tagged with one of the jobs
        or named in instance_ids."""
        filters = [{"Name": f"tag:{STACK_TAG}", "Values": [self.outputs["name_prefix"]]}]
        ec2 = self.client("ec2")
        if job_ids is None:
            pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
            return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
        found: dict[str, dict[str, Any]] = {}
        if job_ids:
            tagged = [*filters, {"Name": f"tag:{JOB_TAG}", "Values": sorted(job_ids)}]
            for page in ec2.get_paginator("describe_instances").paginate(Filters=tagged):
                found.update({i["InstanceId"]: i for r in page["Reservations"] for i in r["Instances"]})
        missing = sorted(set(instance_ids) - set(found))
        if missing:
            for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=missing):
                found.update({i["InstanceId"]: i for r in page["Reservations"] for i in r["Instances"]})
        return sorted(found.values(), key=lambda instance: instance["LaunchTime"])

    def output_artifact_zip(self, run: PipelineRun) -> bytes:
        """The output artifact the build uploaded, as it is."""
        job = run.jobs[0]
        location = job.data["outputArtifacts"][0]["location"]["s3Location"]
        return self.client("s3").get_object(Bucket=location["bucketName"], Key=location["objectKey"])["Body"].read()

    def read_output_artifact(self, run: PipelineRun) -> dict[str, bytes]:
        """The output artifact the build uploaded, unzipped."""
        return unzip(self.output_artifact_zip(run))

    def destroy(self) -> None:
        self.terraform.destroy(self.variables)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def leftovers(deployment: Deployment, prefix: str) -> dict[str, list[str]]:
    """Everything named with prefix that the module or the example creates, per service (after a destroy: {})."""
    lambdas = deployment.client("lambda").list_functions()["Functions"]
    machines = deployment.client("stepfunctions").list_state_machines()["stateMachines"]
    roles = deployment.client("iam").list_roles()["Roles"]
    profiles = deployment.client("iam").list_instance_profiles()["InstanceProfiles"]
    rules = deployment.client("events").list_rules()["Rules"]
    tables = deployment.client("dynamodb").list_tables()["TableNames"]
    groups = deployment.client("logs").describe_log_groups()["logGroups"]
    documents = deployment.client("ssm").list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])
    templates = deployment.client("ec2").describe_launch_templates()["LaunchTemplates"]
    action_types = deployment.client("codepipeline").list_action_types(actionOwnerFilter="Custom")["actionTypes"]
    pipelines = deployment.client("codepipeline").list_pipelines()["pipelines"]
    buckets = deployment.client("s3").list_buckets()["Buckets"]
    found = {
        "lambda functions": [f["FunctionName"] for f in lambdas],
        "state machines": [m["name"] for m in machines],
        "iam roles": [r["RoleName"] for r in roles],
        "instance profiles": [p["InstanceProfileName"] for p in profiles],
        "event rules": [r["Name"] for r in rules],
        "dynamodb tables": tables,
        "log groups": [g["logGroupName"].strip("/").split("/")[-1] for g in groups],
        "ssm documents": [d["Name"] for d in documents["DocumentIdentifiers"]],
        "launch templates": [t["LaunchTemplateName"] for t in templates],
        "pipelines": [p["name"] for p in pipelines],
        "buckets": [b["Name"] for b in buckets],
    }
    leftovers = {kind: [n for n in names if prefix in n] for kind, names in found.items()}
    # Custom action types are not named by the prefix: the example's provider is.
    leftovers["action types"] = [
        t["id"]["provider"] for t in action_types if t["id"]["provider"] == deployment.action["provider"]
    ]
    return {kind: names for kind, names in leftovers.items() if names}
