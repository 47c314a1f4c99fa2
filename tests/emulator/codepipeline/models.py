"""Backend behaviour added to moto's CodePipeline: custom action types, the job protocol, pipelines that run.

The functions named like API operations become methods of ``moto.codepipeline.models.CodePipelineBackend``
(the registry in ``emulator.patches``). Their state lives in one ``Store`` per backend, created on first use.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.codepipeline.exceptions import (
    InvalidTagsException,
    PipelineExecutionNotFoundException,
    PipelineNotFoundException,
    ResourceNotFoundException,
    TooManyTagsException,
)
from moto.codepipeline.models import CodePipeline, CodePipelineBackend, PipelineExecution
from moto.core.utils import unix_time, utcnow

from emulator.codepipeline.exceptions import (
    ActionTypeNotFoundException,
    DuplicatedStopRequestException,
    InvalidActionDeclarationException,
    InvalidJobStateException,
    InvalidNonceException,
    JobNotFoundException,
    LimitExceededException,
    PipelineExecutionNotStoppableException,
    ValidationException,
)

LOG = logging.getLogger("emulator.codepipeline")

CATEGORIES = ("Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute")
FAILURE_TYPES = (
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
)
MAX_CUSTOM_ACTION_TYPES = 50  # per Region (CodePipeline quotas)
FINAL_EXECUTION_STATUSES = ("Succeeded", "Failed", "Stopped")
_NAME_PATTERN = re.compile(r"[0-9A-Za-z_-]+")
_KEY_ALPHABET = string.ascii_letters + string.digits
WAIT_SLICE = 0.5  # seconds a waiting runner sleeps before it checks for stop requests again


# ---------------------------------------------------------------------------------------------------------------------
# Model


@dataclass
class CustomActionType:
    category: str
    provider: str
    version: str
    settings: dict[str, str]
    properties: list[dict[str, Any]]
    input_artifacts: dict[str, int]
    output_artifacts: dict[str, int]
    arn: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.category, self.provider, self.version

    @property
    def type_id(self) -> dict[str, str]:
        return {"category": self.category, "owner": "Custom", "provider": self.provider, "version": self.version}

    def definition(self) -> tuple[Any, ...]:
        """What must match for a deleted type's version to be created again."""
        return self.settings, self.properties, self.input_artifacts, self.output_artifacts

    def describe(self) -> dict[str, Any]:
        # The service does not return a property's "type" (the Terraform provider works around it).
        properties = [{k: v for k, v in p.items() if k != "type"} for p in self.properties]
        return {
            "id": self.type_id,
            "settings": self.settings,
            "actionConfigurationProperties": properties,
            "inputArtifactDetails": self.input_artifacts,
            "outputArtifactDetails": self.output_artifacts,
        }

    def url(self, template_name: str, configuration: dict[str, str], external_execution_id: str | None) -> str | None:
        template = self.settings.get(template_name)
        if not template:
            return None
        url = re.sub(r"\{Config:([^}]+)\}", lambda m: configuration.get(m.group(1), ""), template)
        return url.replace("{ExternalExecutionId}", external_execution_id or "")


@dataclass
class JobResult:
    """One Put*Result call as CodePipeline received it."""

    job_id: str
    time: float
    kind: str  # "success" | "failure"
    summary: str | None = None
    message: str | None = None
    failure_type: str | None = None
    external_execution_id: str | None = None
    percent_complete: int | None = None
    continuation_token: str | None = None
    output_variables: dict[str, str] | None = None
    current_revision: dict[str, Any] | None = None


@dataclass
class Job:
    id: str
    nonce: str
    account_id: str
    data: dict[str, Any]
    run: ActionRun
    status: str = "Queued"  # Queued -> Dispatched -> InProgress -> Succeeded | Failed | TimedOut
    acknowledge_calls: int = 0  # AcknowledgeJob requests naming this job, whatever their answer (for the benchmark)

    @property
    def action_type_id(self) -> dict[str, str]:
        return self.data["actionTypeId"]

    def to_poll_dict(self) -> dict[str, Any]:
        return {"id": self.id, "data": self.data, "nonce": self.nonce, "accountId": self.account_id}

    def to_details_dict(self) -> dict[str, Any]:
        return {"id": self.id, "data": self.data, "accountId": self.account_id}


@dataclass
class Artifact:
    name: str
    bucket: str
    key: str
    revision: str | None = None

    def to_job_dict(self) -> dict[str, Any]:
        location = {"type": "S3", "s3Location": {"bucketName": self.bucket, "objectKey": self.key}}
        return {"name": self.name, "location": location} | ({"revision": self.revision} if self.revision else {})

    def to_event_dict(self) -> dict[str, Any]:
        return {"name": self.name, "s3location": {"bucket": self.bucket, "key": self.key}}


@dataclass
class ActionRun:
    """One execution of one action of a pipeline execution (GetPipelineState's ``latestExecution``)."""

    pipeline_name: str
    pipeline_version: int
    execution_id: str
    stage: str
    declaration: dict[str, Any]
    action_type: CustomActionType | None
    pipeline_arn: str
    encryption_key: dict[str, str] | None
    inputs: list[Artifact]
    outputs: list[Artifact]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    status: str = "InProgress"  # InProgress | Succeeded | Failed | Abandoned
    summary: str | None = None
    external_execution_id: str | None = None
    percent_complete: int | None = None
    error_details: dict[str, str] | None = None
    last_status_change: float = field(default_factory=time.time)
    jobs: list[Job] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.declaration["name"]

    @property
    def type_id(self) -> dict[str, str]:
        return self.declaration["actionTypeId"]

    @property
    def configuration(self) -> dict[str, str]:
        return self.declaration.get("configuration") or {}

    def finish(self, status: str, summary: str | None = None, error: tuple[str, str] | None = None) -> None:
        self.status = status
        self.summary = summary[:2048] if summary else self.summary
        self.error_details = {"code": error[0], "message": error[1][:5000]} if error else None
        self.last_status_change = time.time()

    def external_execution_url(self) -> str | None:
        if self.action_type is None or not self.external_execution_id:
            return None
        return self.action_type.url("executionUrlTemplate", self.configuration, self.external_execution_id)

    def to_latest_execution(self) -> dict[str, Any]:
        execution = {
            "actionExecutionId": self.id,
            "status": self.status,
            "summary": self.summary,
            "lastStatusChange": self.last_status_change,
            "externalExecutionId": self.external_execution_id,
            "externalExecutionUrl": self.external_execution_url(),
            "percentComplete": self.percent_complete,
            "errorDetails": self.error_details,
        }
        return {k: v for k, v in execution.items() if v is not None}


@dataclass
class StopRequest:
    abandon: bool
    reason: str | None


class Store:
    """Everything the emulator adds to one CodePipeline backend (one account and Region)."""

    def __init__(self) -> None:
        self.changed = threading.Condition(threading.RLock())
        self.action_types: dict[tuple[str, str, str], CustomActionType] = {}
        self.deleted_action_types: dict[tuple[str, str, str], CustomActionType] = {}
        self.jobs: dict[str, Job] = {}
        self.results: list[JobResult] = []
        # pipeline name -> stage name -> {"pipelineExecutionId", "status"}
        self.stage_states: dict[str, dict[str, dict[str, str]]] = {}
        # pipeline name -> (stage name, action name) -> latest run
        self.action_states: dict[str, dict[tuple[str, str], ActionRun]] = {}
        self.stop_requests: dict[str, StopRequest] = {}
        self.closed = False

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()


def store(backend: CodePipelineBackend) -> Store:
    # moto's reset() empties the backend's __dict__, so the store goes with it.
    return backend.__dict__.setdefault("_emulator_store", Store())


# ---------------------------------------------------------------------------------------------------------------------
# Validation helpers


def _check_length(name: str, value: str | None, low: int, high: int, required: bool = False) -> None:
    if value is None:
        if required:
            raise ValidationException(
                f"1 validation error detected: Value null at '{name}' failed to satisfy constraint"
            )
        return
    if not low <= len(value) <= high:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
            f"Member must have length between {low} and {high}"
        )


def _check_name(name: str, value: str, high: int) -> None:
    _check_length(name, value, 1, high, required=True)
    if not _NAME_PATTERN.fullmatch(value):
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [0-9A-Za-z_-]+"
        )


def _check_enum(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def _check_artifact_details(name: str, details: dict[str, Any] | None) -> dict[str, int]:
    if not details or "minimumCount" not in details or "maximumCount" not in details:
        raise ValidationException(f"1 validation error detected: Value null at '{name}' failed to satisfy constraint")
    low, high = int(details["minimumCount"]), int(details["maximumCount"])
    for member, count in (("minimumCount", low), ("maximumCount", high)):
        if not 0 <= count <= 5:
            raise ValidationException(
                f"1 validation error detected: Value '{count}' at '{name}.{member}' failed to satisfy constraint: "
                "Member must have value between 0 and 5"
            )
    if low > high:
        raise ValidationException(f"{name}: minimumCount {low} is greater than maximumCount {high}")
    return {"minimumCount": low, "maximumCount": high}


def _check_properties(properties: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(properties) > 10:
        raise ValidationException(
            "1 validation error detected: Value at 'configurationProperties' failed to satisfy constraint: "
            "Member must have length less than or equal to 10"
        )
    names = [p.get("name") for p in properties]
    if len(set(names)) != len(names):
        raise ValidationException("Configuration property names must be unique")
    for prop in properties:
        _check_length("configurationProperties.member.name", prop.get("name"), 1, 50, required=True)
        _check_length("configurationProperties.member.description", prop.get("description"), 1, 160)
        for flag in ("required", "key", "secret"):
            if not isinstance(prop.get(flag), bool):
                raise ValidationException(f"Configuration property '{prop['name']}' must set '{flag}'")
        if "type" in prop:
            _check_enum("configurationProperties.member.type", prop["type"], ("String", "Number", "Boolean"))
    queryable = [p for p in properties if p.get("queryable")]
    if len(queryable) > 1:
        raise ValidationException("Only one configuration property can be queryable")
    if queryable and (not queryable[0]["required"] or queryable[0]["secret"]):
        raise ValidationException("A queryable configuration property must be required and not secret")
    return properties


def _check_settings(settings: dict[str, str] | None) -> dict[str, str]:
    settings = settings or {}
    for name, value in settings.items():
        _check_length(f"settings.{name}", value, 1, 2048)
    return settings


def _check_tags(arn: str, existing: dict[str, str], tags: list[dict[str, str]]) -> None:
    for tag in tags:
        _check_length("tags.member.key", tag.get("key"), 1, 128, required=True)
        _check_length("tags.member.value", tag.get("value"), 0, 256, required=True)
        if tag["key"].startswith("aws:"):
            raise InvalidTagsException(
                "Not allowed to modify system tags. System tags start with 'aws:'. "
                "msg=[Caller is an end user and not allowed to mutate system tags]"
            )
    if len(existing | {t["key"]: t["value"] for t in tags}) > 50:
        raise TooManyTagsException(arn)


def describe_type_id(type_id: dict[str, str]) -> str:
    return (
        f"ActionType (Category: '{type_id.get('category')}', Provider: '{type_id.get('provider')}', "
        f"Owner: '{type_id.get('owner')}', Version: '{type_id.get('version')}')"
    )


def not_available(type_id: dict[str, str]) -> str:
    """CodePipeline's words for a custom action type that does not exist or was deleted (ActionTypeNotFound)."""
    return (
        f"ActionType (Category: '{type_id.get('category')}', Owner: '{type_id.get('owner')}', "
        f"Provider: '{type_id.get('provider')}', Version: '{type_id.get('version')}') is not available"
    )


# ---------------------------------------------------------------------------------------------------------------------
# Custom action types (backend methods)


def create_custom_action_type(
    self: CodePipelineBackend,
    category: str,
    provider: str,
    version: str,
    settings: dict[str, str] | None,
    configuration_properties: list[dict[str, Any]] | None,
    input_artifact_details: dict[str, Any] | None,
    output_artifact_details: dict[str, Any] | None,
    tags: list[dict[str, str]] | None,
) -> tuple[CustomActionType, list[dict[str, str]]]:
    _check_enum("category", category, CATEGORIES)
    _check_name("provider", provider, 35)
    _check_name("version", version, 9)
    arn_prefix = f"arn:{self.partition}:codepipeline:{self.region_name}:{self.account_id}"
    arn = f"{arn_prefix}:actiontype:Custom/{category}/{provider}/{version}"
    action_type = CustomActionType(
        category=category,
        provider=provider,
        version=version,
        settings=_check_settings(settings),
        properties=_check_properties(configuration_properties or []),
        input_artifacts=_check_artifact_details("inputArtifactDetails", input_artifact_details),
        output_artifacts=_check_artifact_details("outputArtifactDetails", output_artifact_details),
        arn=arn,
    )
    _check_tags(arn, {}, tags or [])
    state = store(self)
    with state.changed:
        if action_type.key in state.action_types:
            raise ValidationException(f"{describe_type_id(action_type.type_id)} already exists")
        deleted = state.deleted_action_types.get(action_type.key)
        if deleted is not None and deleted.definition() != action_type.definition():
            raise ValidationException(
                f"{describe_type_id(action_type.type_id)} was deleted and can only be created again with the "
                "same definition: use a new version"
            )
        if len(state.action_types) >= MAX_CUSTOM_ACTION_TYPES:
            raise LimitExceededException(f"The limit of {MAX_CUSTOM_ACTION_TYPES} custom action types was reached")
        action_type.tags = {t["key"]: t["value"] for t in tags or []}
        state.deleted_action_types.pop(action_type.key, None)
        state.action_types[action_type.key] = action_type
    return action_type, sorted(tags or [], key=lambda t: t["key"])


def delete_custom_action_type(self: CodePipelineBackend, category: str, provider: str, version: str) -> None:
    state = store(self)
    with state.changed:
        action_type = state.action_types.pop((category, provider, version), None)
        if action_type is None:
            type_id = {"category": category, "owner": "Custom", "provider": provider, "version": version}
            raise ActionTypeNotFoundException(f"{describe_type_id(type_id)} does not exist")
        state.deleted_action_types[action_type.key] = action_type


def list_action_types(self: CodePipelineBackend, action_owner_filter: str | None) -> list[dict[str, Any]]:
    """Custom action types only: the emulator knows no AWS or ThirdParty catalogue."""
    if action_owner_filter is not None:
        _check_enum("actionOwnerFilter", action_owner_filter, ("AWS", "ThirdParty", "Custom"))
    if action_owner_filter not in (None, "Custom"):
        return []
    with store(self).changed:
        return [t.describe() for t in store(self).action_types.values()]


def _action_type_by_arn(self: CodePipelineBackend, arn: str) -> CustomActionType | None:
    resource = arn.split(":", 5)[-1]
    if not resource.startswith("actiontype:"):
        return None
    parts = resource.removeprefix("actiontype:").split("/")
    action_type = store(self).action_types.get(tuple(parts[1:])) if len(parts) == 4 and parts[0] == "Custom" else None
    if action_type is None:
        raise ResourceNotFoundException(f"The account with id '{self.account_id}' does not include {arn}")
    return action_type


# Wrappers of moto's methods (each takes moto's own and returns its replacement)


def wrap_list_tags_for_resource(original: Any) -> Any:
    """ListTagsForResource that also accepts action type ARNs."""

    def list_tags_for_resource(self: CodePipelineBackend, arn: str) -> list[dict[str, str]]:
        action_type = _action_type_by_arn(self, arn)
        if action_type is None:
            return original(self, arn)
        return [{"key": k, "value": v} for k, v in sorted(action_type.tags.items())]

    return list_tags_for_resource


def wrap_tag_resource(original: Any) -> Any:
    """TagResource that also accepts action type ARNs."""

    def tag_resource(self: CodePipelineBackend, arn: str, tags: list[dict[str, str]]) -> None:
        action_type = _action_type_by_arn(self, arn)
        if action_type is None:
            return original(self, arn, tags)
        _check_tags(arn, action_type.tags, tags)
        action_type.tags.update({t["key"]: t["value"] for t in tags})

    return tag_resource


def wrap_untag_resource(original: Any) -> Any:
    """UntagResource that also accepts action type ARNs."""

    def untag_resource(self: CodePipelineBackend, arn: str, tag_keys: list[str]) -> None:
        action_type = _action_type_by_arn(self, arn)
        if action_type is None:
            return original(self, arn, tag_keys)
        for key in tag_keys:
            action_type.tags.pop(key, None)

    return untag_resource


def _check_custom_actions_exist(self: CodePipelineBackend, pipeline: dict[str, Any]) -> None:
    """CreatePipeline and UpdatePipeline reject Custom actions whose type does not exist, like AWS."""
    for stage in pipeline.get("stages", []):
        for action in stage.get("actions", []):
            type_id = action.get("actionTypeId", {})
            key = (type_id.get("category"), type_id.get("provider"), type_id.get("version"))
            if type_id.get("owner") == "Custom" and key not in store(self).action_types:
                raise InvalidActionDeclarationException(
                    f"{describe_type_id(type_id)} in action '{action.get('name')}' is not available "
                    f"in region '{self.region_name.upper().replace('-', '_')}'"
                )


def wrap_create_pipeline(original: Any) -> Any:
    def create_pipeline(self: CodePipelineBackend, pipeline: dict[str, Any], tags: Any) -> Any:
        _check_custom_actions_exist(self, pipeline)
        return original(self, pipeline, tags)

    return create_pipeline


def wrap_update_pipeline(original: Any) -> Any:
    def update_pipeline(self: CodePipelineBackend, pipeline: dict[str, Any]) -> Any:
        _check_custom_actions_exist(self, pipeline)
        return original(self, pipeline)

    return update_pipeline


def wrap_delete_pipeline(original: Any) -> Any:
    """DeletePipeline also forgets the pipeline's stage and action states (a new pipeline of the same name starts
    blank)."""

    def delete_pipeline(self: CodePipelineBackend, name: str) -> None:
        original(self, name)
        state = store(self)
        with state.changed:
            state.stage_states.pop(name, None)
            state.action_states.pop(name, None)

    return delete_pipeline


# ---------------------------------------------------------------------------------------------------------------------
# Jobs (backend methods)


def _job(self: CodePipelineBackend, job_id: str) -> Job:
    job = store(self).jobs.get(job_id)
    if job is None:
        raise JobNotFoundException(f"Job with id {job_id} not found")
    return job


def _check_in_progress(job: Job) -> None:
    if job.status != "InProgress":
        raise InvalidJobStateException(f"Job with id {job.id} is in state {job.status}, not InProgress")


def poll_for_jobs(
    self: CodePipelineBackend,
    action_type_id: dict[str, str],
    max_batch_size: int | None,
    query_param: dict[str, str] | None,
) -> list[Job]:
    """Queued jobs of the type, and jobs dispatched but never acknowledged; acknowledged ones never again."""
    _check_enum("actionTypeId.owner", action_type_id.get("owner"), ("Custom",))
    key = (action_type_id.get("category"), action_type_id.get("provider"), action_type_id.get("version"))
    state = store(self)
    with state.changed:
        if key not in state.action_types:  # never created, or deleted: PollForJobs fails either way
            raise ActionTypeNotFoundException(not_available(action_type_id))
        wanted = [
            job
            for job in state.jobs.values()
            if job.status in ("Queued", "Dispatched")
            and job.action_type_id == action_type_id
            and all(job.run.configuration.get(k) == v for k, v in (query_param or {}).items())
        ][: max_batch_size or 1]
        for job in wanted:
            job.status = "Dispatched"
        return wanted


def acknowledge_job(self: CodePipelineBackend, job_id: str, nonce: str) -> str:
    state = store(self)
    with state.changed:
        job = _job(self, job_id)
        job.acknowledge_calls += 1
        if nonce != job.nonce:
            raise InvalidNonceException(f"The nonce of job {job_id} does not match")
        if job.status in ("Queued", "Dispatched"):
            job.status = "InProgress"
        return job.status


def get_job_details(self: CodePipelineBackend, job_id: str) -> Job:
    with store(self).changed:
        return _job(self, job_id)


def _check_execution_details(details: dict[str, Any]) -> None:
    _check_length("executionDetails.summary", details.get("summary"), 1, 2048)
    _check_length("executionDetails.externalExecutionId", details.get("externalExecutionId"), 1, 1500)
    percent = details.get("percentComplete")
    if percent is not None and not 0 <= int(percent) <= 100:
        raise ValidationException(
            f"1 validation error detected: Value '{percent}' at 'executionDetails.percentComplete' failed to "
            "satisfy constraint: Member must have value between 0 and 100"
        )


def put_job_success_result(
    self: CodePipelineBackend,
    job_id: str,
    current_revision: dict[str, Any] | None,
    continuation_token: str | None,
    execution_details: dict[str, Any] | None,
    output_variables: dict[str, str] | None,
) -> None:
    details = execution_details or {}
    _check_execution_details(details)
    _check_length("continuationToken", continuation_token, 1, 2048)
    if continuation_token and output_variables:
        raise ValidationException("Output variables can only be set on a job without a continuation token")
    state = store(self)
    with state.changed:
        job = _job(self, job_id)
        _check_in_progress(job)
        job.status = "Succeeded"
        state.results.append(
            JobResult(
                job_id=job_id,
                time=time.time(),
                kind="success",
                summary=details.get("summary"),
                external_execution_id=details.get("externalExecutionId"),
                percent_complete=details.get("percentComplete"),
                continuation_token=continuation_token,
                output_variables=output_variables,
                current_revision=current_revision,
            )
        )
        run = job.run
        run.summary = details.get("summary", run.summary)
        run.external_execution_id = details.get("externalExecutionId", run.external_execution_id)
        run.percent_complete = details.get("percentComplete", run.percent_complete)
        if continuation_token:
            queue_job(self, run, continuation_token)
        elif run.status == "InProgress":
            run.finish("Succeeded")
        state.changed.notify_all()


def put_job_failure_result(self: CodePipelineBackend, job_id: str, failure_details: dict[str, Any]) -> None:
    _check_enum("failureDetails.type", failure_details.get("type"), FAILURE_TYPES)
    _check_length("failureDetails.message", failure_details.get("message"), 1, 5000, required=True)
    _check_length("failureDetails.externalExecutionId", failure_details.get("externalExecutionId"), 1, 1500)
    state = store(self)
    with state.changed:
        job = _job(self, job_id)
        _check_in_progress(job)
        job.status = "Failed"
        message = failure_details["message"]
        state.results.append(
            JobResult(
                job_id=job_id,
                time=time.time(),
                kind="failure",
                message=message,
                failure_type=failure_details["type"],
                external_execution_id=failure_details.get("externalExecutionId"),
            )
        )
        run = job.run
        run.external_execution_id = failure_details.get("externalExecutionId", run.external_execution_id)
        if run.status == "InProgress":
            run.finish("Failed", summary=message, error=(failure_details["type"], message))
        state.changed.notify_all()


def random_string(length: int, alphabet: str = _KEY_ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _artifact_credentials() -> dict[str, str]:
    """STS-looking temporary credentials; the local cloud accepts any."""
    return {
        "accessKeyId": "ASIA" + random_string(16, string.ascii_uppercase + string.digits),
        "secretAccessKey": random_string(40),
        "sessionToken": "FwoGZXIvYXdzE" + random_string(300),
    }


def queue_job(self: CodePipelineBackend, run: ActionRun, continuation_token: str | None = None) -> Job:
    data: dict[str, Any] = {
        "actionTypeId": dict(run.type_id),
        "actionConfiguration": {"configuration": dict(run.configuration)},
        "pipelineContext": {
            "pipelineName": run.pipeline_name,
            "stage": {"name": run.stage},
            "action": {"name": run.name, "actionExecutionId": run.id},
            "pipelineArn": run.pipeline_arn,
            "pipelineExecutionId": run.execution_id,
        },
        "inputArtifacts": [a.to_job_dict() for a in run.inputs],
        "outputArtifacts": [a.to_job_dict() for a in run.outputs],
        "artifactCredentials": _artifact_credentials(),
    }
    if continuation_token:
        data["continuationToken"] = continuation_token
    if run.encryption_key:
        data["encryptionKey"] = {"id": run.encryption_key["id"], "type": run.encryption_key.get("type", "KMS")}
    job = Job(
        id=str(uuid.uuid4()), nonce=random_string(12, string.digits), account_id=self.account_id, data=data, run=run
    )
    state = store(self)
    with state.changed:
        state.jobs[job.id] = job
        run.jobs.append(job)
    return job


# ---------------------------------------------------------------------------------------------------------------------
# Pipelines (backend methods)


def _pipeline(self: CodePipelineBackend, name: str) -> CodePipeline:
    pipeline = self.pipelines.get(name)
    if pipeline is None:
        raise PipelineNotFoundException(f"Account '{self.account_id}' does not have a pipeline with name '{name}'")
    return pipeline


def artifact_store(self: CodePipelineBackend, definition: dict[str, Any]) -> dict[str, Any]:
    stores = definition.get("artifactStores") or {}
    return definition.get("artifactStore") or stores.get(self.region_name) or {}


def start_pipeline_execution(self: CodePipelineBackend, name: str, variables: list[dict[str, str]] | None) -> str:
    from emulator.codepipeline.runner import PipelineRunner  # the runner module imports this one

    pipeline = _pipeline(self, name)
    execution = PipelineExecution(name, pipeline.pipeline["version"], variables)
    execution.status = "InProgress"
    pipeline.executions[execution.pipeline_execution_id] = execution
    PipelineRunner(self, pipeline, execution).start()
    return execution.pipeline_execution_id


def get_pipeline_state(self: CodePipelineBackend, name: str) -> dict[str, Any]:
    pipeline = _pipeline(self, name)
    state = store(self)
    with state.changed:
        stage_states = state.stage_states.get(name, {})
        action_states = state.action_states.get(name, {})
        stages = []
        for stage in pipeline.pipeline["stages"]:
            actions = []
            for action in stage["actions"]:
                run = action_states.get((stage["name"], action["name"]))
                actions.append(
                    {"actionName": action["name"]} | ({"latestExecution": run.to_latest_execution()} if run else {})
                )
            stage_state = {
                "stageName": stage["name"],
                "inboundTransitionState": {"enabled": True},
                "actionStates": actions,
            }
            if stage["name"] in stage_states:
                stage_state["latestExecution"] = dict(stage_states[stage["name"]])
            stages.append(stage_state)
    return {
        "pipelineName": name,
        "pipelineVersion": pipeline.pipeline["version"],
        "stageStates": stages,
        "created": unix_time(pipeline._created),
        "updated": unix_time(pipeline._updated),
    }


def pipeline_metadata(self: CodePipeline) -> dict[str, Any]:
    """GetPipeline/ListPipelines metadata with epoch-second timestamps, as the JSON protocol sends them.

    moto sends ISO strings, which botocore tolerates but the AWS SDK for Go (Terraform) rejects.
    """
    return {"pipelineArn": self._arn, "created": unix_time(self._created), "updated": unix_time(self._updated)}


def stop_pipeline_execution(
    self: CodePipelineBackend, name: str, execution_id: str, abandon: bool, reason: str | None
) -> str:
    pipeline = _pipeline(self, name)
    execution = pipeline.executions.get(execution_id)
    if execution is None:
        raise PipelineExecutionNotFoundException(
            f"Account '{self.account_id}' does not have an execution with id '{execution_id}' for pipeline '{name}'"
        )
    state = store(self)
    with state.changed:
        if execution_id in state.stop_requests:
            raise DuplicatedStopRequestException(f"Execution {execution_id} is already being stopped")
        if execution.status != "InProgress":
            raise PipelineExecutionNotStoppableException(f"Execution {execution_id} is {execution.status}")
        state.stop_requests[execution_id] = StopRequest(abandon=bool(abandon), reason=reason)
        execution.status = "Stopping"
        execution.last_update_time = utcnow()
        state.changed.notify_all()
    return execution_id


def execution_to_dict(original: Any) -> Any:
    """GetPipelineExecution also returns the source revisions the run recorded."""

    def to_dict(self: PipelineExecution) -> dict[str, Any]:
        result = original(self)
        result["artifactRevisions"] = [dict(r) for r in getattr(self, "artifact_revisions", [])]
        return result

    return to_dict


def closing_reset(original: Any) -> Any:
    """moto's reset() of a backend also closes its store: the runner threads of its executions leave."""

    def reset(self: CodePipelineBackend) -> None:
        store(self).close()
        original(self)

    return reset
