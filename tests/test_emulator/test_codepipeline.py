"""The local cloud's CodePipeline: custom action types, the job protocol, pipelines that run, events they emit."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from emulator import codepipeline, events, patches
from emulator.codepipeline import runner

REGION = "us-east-1"
ACTION = {"category": "Build", "owner": "Custom", "provider": "EC2-Linux", "version": "1"}
PROPERTIES = [
    {"name": "Command", "required": True, "key": True, "secret": False, "queryable": True, "type": "String"},
    {"name": "InstanceType", "required": False, "key": False, "secret": False, "description": "EC2 type"},
]
SETTINGS = {
    "executionUrlTemplate": "https://console.example/states/{ExternalExecutionId}",
    "entityUrlTemplate": "https://console.example/{Config:Command}",
}
SOURCE_BODY = b"PK\x05\x06" + bytes(18)  # an empty zip


@pytest.fixture(autouse=True)
def no_managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here needs AWS managed policies; loading them (emulator.server turns it on) costs seconds per reset."""
    monkeypatch.delenv("MOTO_IAM_LOAD_MANAGED_POLICIES", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    patches.apply()
    with mock_aws():
        yield


@pytest.fixture
def cp(aws: None) -> Any:
    return boto3.client("codepipeline", region_name=REGION)


def create_action_type(cp: Any, **overrides: Any) -> dict[str, Any]:
    params = {
        "category": "Build",
        "provider": "EC2-Linux",
        "version": "1",
        "settings": SETTINGS,
        "configurationProperties": PROPERTIES,
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
        "tags": [{"key": "team", "value": "ci"}],
    }
    return cp.create_custom_action_type(**(params | overrides))


def create_pipeline(cp: Any, name: str = "app", build: dict[str, str] = ACTION, kms_key: str | None = None) -> str:
    """A two-stage pipeline: S3 source -> one build action of type `build`. Returns the pipeline ARN."""
    iam = boto3.client("iam", region_name=REGION)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}}]}
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in ("source-bucket", "artifact-bucket"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="source-bucket", Key="src.zip", Body=SOURCE_BODY)
    artifact_store: dict[str, Any] = {"type": "S3", "location": "artifact-bucket"}
    if kms_key:
        artifact_store["encryptionKey"] = {"id": kms_key, "type": "KMS"}
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": "source-bucket", "S3ObjectKey": "src.zip", "PollForSourceChanges": "false"},
        "outputArtifacts": [{"name": "SourceArtifact"}],
    }
    build_action = {
        "name": "Build",
        "actionTypeId": build,
        "configuration": {"Command": "make test", "InstanceType": "t3.large"},
        "inputArtifacts": [{"name": "SourceArtifact"}],
        "outputArtifacts": [{"name": "BuildOutput"}],
    }
    pipeline = {
        "name": name,
        "roleArn": role,
        "artifactStore": artifact_store,
        "stages": [{"name": "Source", "actions": [source]}, {"name": "Build", "actions": [build_action]}],
    }
    cp.create_pipeline(pipeline=pipeline)
    return cp.get_pipeline(name=name)["metadata"]["pipelineArn"]


def poll_job(cp: Any, timeout: float = 5.0, **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = cp.poll_for_jobs(actionTypeId=ACTION, maxBatchSize=1, **params)["jobs"]
        if jobs:
            return jobs[0]
        time.sleep(0.02)
    raise AssertionError("no job was queued")


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def build_state(cp: Any, name: str = "app") -> dict[str, Any]:
    stages = cp.get_pipeline_state(name=name)["stageStates"]
    return next(s for s in stages if s["stageName"] == "Build")


# ---------------------------------------------------------------------------------------------------------------------
# Custom action types


def test_custom_action_type_create_list_tag_delete(cp: Any) -> None:
    created = create_action_type(cp)
    assert created["actionType"]["id"] == ACTION
    assert created["tags"] == [{"key": "team", "value": "ci"}]

    [listed] = cp.list_action_types(actionOwnerFilter="Custom")["actionTypes"]
    assert listed["id"] == ACTION
    assert listed["settings"] == SETTINGS
    assert listed["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 1}
    # like AWS, the property type is not returned
    assert [p.get("type") for p in listed["actionConfigurationProperties"]] == [None, None]
    assert listed["actionConfigurationProperties"][1]["description"] == "EC2 type"
    assert cp.list_action_types(actionOwnerFilter="AWS")["actionTypes"] == []

    arn = f"arn:aws:codepipeline:{REGION}:123456789012:actiontype:Custom/Build/EC2-Linux/1"
    assert cp.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "ci"}]
    cp.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "prod"}])
    cp.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert cp.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "prod"}]

    cp.delete_custom_action_type(category="Build", provider="EC2-Linux", version="1")
    assert cp.list_action_types(actionOwnerFilter="Custom")["actionTypes"] == []
    with pytest.raises(ClientError) as excinfo:
        cp.delete_custom_action_type(category="Build", provider="EC2-Linux", version="1")
    assert error_code(excinfo) == "ActionTypeNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        cp.list_tags_for_resource(resourceArn=arn)
    assert error_code(excinfo) == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "overrides",
    [
        {"version": "1234567890"},
        {"version": "1.0"},
        {"provider": "p" * 36},
        {"category": "Bogus"},
        {"configurationProperties": [{**PROPERTIES[1], "name": f"P{i}"} for i in range(11)]},
        {"configurationProperties": [PROPERTIES[0], {**PROPERTIES[1], "queryable": True, "required": True}]},
        {"outputArtifactDetails": {"minimumCount": 0, "maximumCount": 6}},
        {"inputArtifactDetails": {"minimumCount": 2, "maximumCount": 1}},
    ],
    ids=[
        "version-long",
        "version-pattern",
        "provider-long",
        "category",
        "11-properties",
        "2-queryable",
        "6-outputs",
        "min>max",
    ],
)
def test_custom_action_type_validation(cp: Any, overrides: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        create_action_type(cp, **overrides)
    assert error_code(excinfo) == "ValidationException"


def test_custom_action_type_duplicate_and_reuse_of_a_deleted_version(cp: Any) -> None:
    create_action_type(cp)
    with pytest.raises(ClientError) as excinfo:
        create_action_type(cp)
    assert error_code(excinfo) == "ValidationException"

    cp.delete_custom_action_type(category="Build", provider="EC2-Linux", version="1")
    with pytest.raises(ClientError) as excinfo:
        create_action_type(cp, configurationProperties=PROPERTIES[:1])
    assert error_code(excinfo) == "ValidationException"
    create_action_type(cp)  # the identical definition may come back

    with pytest.raises(ClientError) as excinfo:
        create_action_type(cp, version="2", tags=[{"key": "aws:reserved", "value": "x"}])
    assert error_code(excinfo) == "InvalidTagsException"


def test_pipeline_with_an_unknown_custom_action_type_is_rejected(cp: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        create_pipeline(cp)
    assert error_code(excinfo) == "InvalidActionDeclarationException"


def test_a_deleted_version_fails_the_pipelines_still_using_it_and_cannot_be_polled(cp: Any) -> None:
    create_action_type(cp)
    create_action_type(cp, version="2")
    create_pipeline(cp)  # on version 1
    cp.delete_custom_action_type(category="Build", provider="EC2-Linux", version="1")
    not_available = (
        "ActionType (Category: 'Build', Owner: 'Custom', Provider: 'EC2-Linux', Version: '1') is not available"
    )

    for _ in range(2):  # every run, until the pipeline is changed
        execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
        execution = codepipeline.wait_for_execution("app", execution_id, timeout=5)
        assert execution.status == "Failed"
        assert execution.status_summary == f"Action Build in stage Build failed: {not_available}"
    assert codepipeline.jobs() == []  # the action failed without a job
    build = build_state(cp)["actionStates"][0]["latestExecution"]
    assert build["status"] == "Failed" and build["errorDetails"]["message"] == not_available

    with pytest.raises(ClientError) as excinfo:
        cp.poll_for_jobs(actionTypeId=ACTION)
    assert error_code(excinfo) == "ActionTypeNotFoundException"
    assert excinfo.value.response["Error"]["Message"] == not_available
    assert cp.poll_for_jobs(actionTypeId={**ACTION, "version": "2"})["jobs"] == []  # the other version is served


# ---------------------------------------------------------------------------------------------------------------------
# Jobs


def test_job_shape_and_source_artifact(cp: Any) -> None:
    create_action_type(cp)
    pipeline_arn = create_pipeline(cp)
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]

    job = poll_job(cp, queryParam={"Command": "make test"})
    data = job["data"]
    assert re.fullmatch(r"[0-9a-f-]{36}", job["id"]) and job["nonce"] and job["accountId"] == "123456789012"
    assert data["actionTypeId"] == ACTION
    assert data["actionConfiguration"]["configuration"] == {"Command": "make test", "InstanceType": "t3.large"}
    context = data["pipelineContext"]
    assert context["pipelineName"] == "app" and context["pipelineArn"] == pipeline_arn
    assert context["stage"] == {"name": "Build"} and context["action"]["name"] == "Build"
    assert context["pipelineExecutionId"] == execution_id
    [source] = data["inputArtifacts"]
    assert source["name"] == "SourceArtifact" and source["revision"]
    location = source["location"]["s3Location"]
    assert location["bucketName"] == "artifact-bucket"
    assert re.fullmatch(r"app/SourceArti/[A-Za-z0-9]{7}", location["objectKey"])
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_object(Bucket="artifact-bucket", Key=location["objectKey"])["Body"].read() == SOURCE_BODY
    [output] = data["outputArtifacts"]
    assert re.fullmatch(r"app/BuildOutpu/[A-Za-z0-9]{7}", output["location"]["s3Location"]["objectKey"])
    assert set(data["artifactCredentials"]) == {"accessKeyId", "secretAccessKey", "sessionToken"}
    assert "continuationToken" not in data and "encryptionKey" not in data

    details = cp.get_job_details(jobId=job["id"])["jobDetails"]
    assert details == {"id": job["id"], "data": data, "accountId": "123456789012"}
    assert cp.poll_for_jobs(actionTypeId=ACTION, queryParam={"Command": "other"})["jobs"] == []


def test_job_protocol_with_continuation(cp: Any) -> None:
    create_action_type(cp)
    create_pipeline(cp)
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
    first = poll_job(cp)

    with pytest.raises(ClientError) as excinfo:
        cp.acknowledge_job(jobId=first["id"], nonce=first["nonce"] + "0")
    assert error_code(excinfo) == "InvalidNonceException"
    with pytest.raises(ClientError) as excinfo:
        cp.put_job_success_result(jobId=first["id"])
    assert error_code(excinfo) == "InvalidJobStateException"
    assert cp.poll_for_jobs(actionTypeId=ACTION)["jobs"][0]["id"] == first["id"]  # dispatched, not acknowledged

    assert cp.acknowledge_job(jobId=first["id"], nonce=first["nonce"])["status"] == "InProgress"
    assert cp.acknowledge_job(jobId=first["id"], nonce=first["nonce"])["status"] == "InProgress"
    assert cp.poll_for_jobs(actionTypeId=ACTION)["jobs"] == []

    with pytest.raises(ClientError) as excinfo:
        cp.put_job_success_result(jobId=first["id"], continuationToken="token", outputVariables={"A": "b"})
    assert error_code(excinfo) == "ValidationException"
    details = {"summary": "build started", "externalExecutionId": "exec-1", "percentComplete": 10}
    cp.put_job_success_result(jobId=first["id"], continuationToken="exec-arn", executionDetails=details)
    with pytest.raises(ClientError) as excinfo:
        cp.put_job_success_result(jobId=first["id"])
    assert error_code(excinfo) == "InvalidJobStateException"

    [action_state] = build_state(cp)["actionStates"]
    latest = action_state["latestExecution"]
    assert latest["status"] == "InProgress" and latest["summary"] == "build started"
    assert latest["externalExecutionUrl"] == "https://console.example/states/exec-1"
    assert (
        cp.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)["pipelineExecution"]["status"]
        == "InProgress"
    )

    second = poll_job(cp)
    assert second["id"] != first["id"] and second["data"]["continuationToken"] == "exec-arn"
    assert second["data"]["outputArtifacts"] == first["data"]["outputArtifacts"]
    cp.acknowledge_job(jobId=second["id"], nonce=second["nonce"])
    cp.put_job_success_result(jobId=second["id"], executionDetails={"summary": "done"}, outputVariables={"A": "b"})

    execution = codepipeline.wait_for_execution("app", execution_id, timeout=5)
    assert execution.status == "Succeeded"
    reported = codepipeline.results()
    assert [(r.job_id, r.kind, r.continuation_token) for r in reported] == [
        (first["id"], "success", "exec-arn"),
        (second["id"], "success", None),
    ]
    assert reported[1].output_variables == {"A": "b"} and reported[0].external_execution_id == "exec-1"
    summary = cp.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)["pipelineExecution"]
    assert summary["status"] == "Succeeded" and summary["artifactRevisions"][0]["name"] == "SourceArtifact"
    build = build_state(cp)
    assert build["latestExecution"] == {"pipelineExecutionId": execution_id, "status": "Succeeded"}
    assert build["actionStates"][0]["latestExecution"]["status"] == "Succeeded"
    assert build["actionStates"][0]["latestExecution"]["summary"] == "done"


def test_job_failure_fails_the_execution(cp: Any) -> None:
    create_action_type(cp)
    create_pipeline(cp)
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
    job = poll_job(cp)
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])

    for bad in ({"type": "Bogus", "message": "x"}, {"type": "JobFailed", "message": "x" * 5001}):
        with pytest.raises(ClientError) as excinfo:
            cp.put_job_failure_result(jobId=job["id"], failureDetails=bad)
        assert error_code(excinfo) == "ValidationException"
    failure = {"type": "JobFailed", "message": "exit code 2", "externalExecutionId": "exec-9"}
    cp.put_job_failure_result(jobId=job["id"], failureDetails=failure)
    with pytest.raises(ClientError) as excinfo:
        cp.put_job_failure_result(jobId=job["id"], failureDetails=failure)
    assert error_code(excinfo) == "InvalidJobStateException"

    execution = codepipeline.wait_for_execution("app", execution_id, timeout=5)
    assert execution.status == "Failed" and "exit code 2" in execution.status_summary
    latest = build_state(cp)["actionStates"][0]["latestExecution"]
    assert latest["status"] == "Failed"
    assert latest["errorDetails"] == {"code": "JobFailed", "message": "exit code 2"}
    assert latest["externalExecutionUrl"] == "https://console.example/states/exec-9"
    [result] = codepipeline.results(job_id=job["id"])
    assert (result.kind, result.failure_type, result.message) == ("failure", "JobFailed", "exit code 2")


def test_unknown_job_and_unknown_action_type(cp: Any) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    for call in (
        lambda: cp.acknowledge_job(jobId=unknown, nonce="1"),
        lambda: cp.get_job_details(jobId=unknown),
        lambda: cp.put_job_success_result(jobId=unknown),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "JobNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        cp.poll_for_jobs(actionTypeId=ACTION)
    assert error_code(excinfo) == "ActionTypeNotFoundException"


def test_encryption_key_reaches_job_and_artifacts(cp: Any) -> None:
    create_action_type(cp)
    key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    create_pipeline(cp, kms_key=key_id)
    cp.start_pipeline_execution(name="app")
    job = poll_job(cp)
    assert job["data"]["encryptionKey"] == {"id": key_id, "type": "KMS"}
    location = job["data"]["inputArtifacts"][0]["location"]["s3Location"]
    head = boto3.client("s3", region_name=REGION).head_object(Bucket="artifact-bucket", Key=location["objectKey"])
    assert head["ServerSideEncryption"] == "aws:kms"


def test_unanswered_job_times_out(cp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "ACTION_TIMEOUT_SECONDS", 0.3)
    create_action_type(cp)
    create_pipeline(cp)
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
    job = poll_job(cp)
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])

    execution = codepipeline.wait_for_execution("app", execution_id, timeout=5)
    assert execution.status == "Failed" and "timed out" in execution.status_summary
    assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "TimedOut"
    with pytest.raises(ClientError) as excinfo:
        cp.put_job_success_result(jobId=job["id"])
    assert error_code(excinfo) == "InvalidJobStateException"


def test_unsupported_action_provider_fails_the_execution(cp: Any) -> None:
    create_pipeline(cp, build={"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"})
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
    execution = codepipeline.wait_for_execution("app", execution_id, timeout=5)
    assert execution.status == "Failed" and "cannot run" in execution.status_summary


def test_stop_and_abandon(cp: Any) -> None:
    create_action_type(cp)
    create_pipeline(cp)
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
    job = poll_job(cp)
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])

    cp.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id, abandon=True, reason="no")
    execution = codepipeline.wait_for_execution("app", execution_id, timeout=5)
    assert (execution.status, execution.status_summary) == ("Stopped", "no")
    assert build_state(cp)["actionStates"][0]["latestExecution"]["status"] == "Abandoned"
    with pytest.raises(ClientError) as excinfo:
        cp.put_job_success_result(jobId=job["id"])
    assert error_code(excinfo) == "InvalidJobStateException"
    with pytest.raises(ClientError) as excinfo:
        cp.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    assert error_code(excinfo) == "PipelineExecutionNotStoppableException"


def test_stop_without_abandon_lets_the_running_action_finish(cp: Any) -> None:
    create_action_type(cp)
    create_pipeline(cp)
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
    job = poll_job(cp)
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])

    cp.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id, reason="later")
    summary = cp.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)["pipelineExecution"]
    assert summary["status"] == "Stopping"
    with pytest.raises(ClientError) as excinfo:
        cp.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    assert error_code(excinfo) == "DuplicatedStopRequestException"
    cp.put_job_success_result(jobId=job["id"])

    execution = codepipeline.wait_for_execution("app", execution_id, timeout=5)
    assert (execution.status, execution.status_summary) == ("Stopped", "later")
    assert build_state(cp)["actionStates"][0]["latestExecution"]["status"] == "Succeeded"
    definition = cp.get_pipeline(name="app")["pipeline"]
    cp.delete_pipeline(name="app")
    cp.create_pipeline(pipeline=definition)  # a new pipeline of the same name starts without state
    assert "latestExecution" not in build_state(cp)


# ---------------------------------------------------------------------------------------------------------------------
# Events


def test_action_events_reach_an_sqs_target(cp: Any) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="pipeline-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    eventbridge = boto3.client("events", region_name=REGION)
    pattern = {
        "source": ["aws.codepipeline"],
        "detail-type": ["CodePipeline Action Execution State Change"],
        "detail": {"type": {"owner": ["Custom"], "provider": ["EC2-Linux"]}},
    }
    eventbridge.put_rule(Name="custom-actions", EventPattern=json.dumps(pattern))
    eventbridge.put_targets(Rule="custom-actions", Targets=[{"Id": "q", "Arn": queue_arn}])
    create_action_type(cp)
    pipeline_arn = create_pipeline(cp)
    execution_id = cp.start_pipeline_execution(name="app")["pipelineExecutionId"]
    job = poll_job(cp)
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    cp.put_job_success_result(jobId=job["id"], executionDetails={"externalExecutionId": "exec-1"})
    codepipeline.wait_for_execution("app", execution_id, timeout=5)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    started, succeeded = (json.loads(m["Body"]) for m in messages)
    assert started["source"] == "aws.codepipeline" and started["resources"] == [pipeline_arn]
    detail = started["detail"]
    assert detail["state"] == "STARTED" and detail["execution-id"] == execution_id
    assert (detail["pipeline"], detail["stage"], detail["action"]) == ("app", "Build", "Build")
    assert detail["type"] == {k: ACTION[k] for k in ("owner", "provider", "category", "version")}
    assert detail["region"] == REGION and detail["action-execution-id"]
    input_location = job["data"]["inputArtifacts"][0]["location"]["s3Location"]
    assert detail["input-artifacts"] == [
        {"name": "SourceArtifact", "s3location": {"bucket": "artifact-bucket", "key": input_location["objectKey"]}}
    ]
    assert succeeded["detail"]["state"] == "SUCCEEDED"
    assert succeeded["detail"]["execution-result"]["external-execution-url"] == "https://console.example/states/exec-1"
    assert [d.target_arn for d in events.deliveries(queue_arn)] == [queue_arn, queue_arn]


# ---------------------------------------------------------------------------------------------------------------------
# Wire format against botocore's model


def _check_against_shape(value: Any, shape: Any, path: str) -> None:
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        for key, member in value.items():
            assert key in shape.members, f"{path}.{key} is not in {shape.name}"
            _check_against_shape(member, shape.members[key], f"{path}.{key}")
        missing = set(shape.required_members) - set(value)
        assert not missing, f"{path} lacks required {missing}"
    elif shape.type_name == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            _check_against_shape(item, shape.member, f"{path}[{index}]")
    elif shape.type_name == "map":
        assert isinstance(value, dict), path
        for key, item in value.items():
            _check_against_shape(item, shape.value, f"{path}.{key}")


def test_responses_match_the_botocore_model(cp: Any) -> None:
    raw: dict[str, Any] = {}

    def capture(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        raw[operation_model.name] = json.loads(response_dict["body"] or b"{}")

    cp.meta.events.register("before-parse.codepipeline.*", capture)
    create_action_type(cp)
    create_pipeline(cp, kms_key="alias/artifacts")
    cp.start_pipeline_execution(name="app")
    job = poll_job(cp)
    cp.get_job_details(jobId=job["id"])
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    cp.put_job_success_result(jobId=job["id"], continuationToken="t", executionDetails={"externalExecutionId": "e"})
    cp.list_action_types()
    cp.get_pipeline_state(name="app")

    model = botocore.session.get_session().get_service_model("codepipeline")
    for operation in ("PollForJobs", "GetJobDetails", "ListActionTypes", "GetPipelineState", "CreateCustomActionType"):
        assert raw[operation], operation
        _check_against_shape(raw[operation], model.operation_model(operation).output_shape, operation)
    assert raw["PollForJobs"]["jobs"][0]["data"]["encryptionKey"]
    assert raw["GetPipelineState"]["stageStates"][1]["actionStates"][0]["latestExecution"]["externalExecutionUrl"]


# ---------------------------------------------------------------------------------------------------------------------
# In a ThreadedMotoServer


def test_job_protocol_through_a_threaded_moto_server() -> None:
    patches.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "codepipeline",
            region_name=REGION,
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        create_action_type(client, provider="Served")
        served = ACTION | {"provider": "Served"}
        assert client.list_action_types(actionOwnerFilter="Custom")["actionTypes"][0]["id"] == served
        assert client.poll_for_jobs(actionTypeId=served)["jobs"] == []
        client.delete_custom_action_type(category="Build", provider="Served", version="1")
    finally:
        codepipeline.backend().reset()
        server.stop()
