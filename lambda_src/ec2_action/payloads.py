"""The shapes the steps pass one another (DESIGN.md, "Lambda functions"): the job (the state machine's input `job`),
the build spec and the instance (acquire's output, `$.build` and `$.instance`) and the result (the jobs table's
`result`, what a job is answered)."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class ActionTypeId(TypedDict):
    """A job's action type, as CodePipeline's API spells it."""

    category: str
    owner: str
    provider: str
    version: str


class PipelineContext(TypedDict):
    name: str
    arn: str
    execution_id: str
    stage: str
    action: str
    action_execution_id: str


class Artifact(TypedDict):
    name: str
    bucket: str
    key: str


class Job(TypedDict):
    """The state machine's input `job` (codepipeline.sanitize_job): never the artifactCredentials."""

    id: str
    action: ActionTypeId
    configuration: dict[str, str]
    pipeline: PipelineContext
    input_artifact: Artifact | None
    output_artifact: Artifact | None
    encryption_key_id: str | None
    # When its action started (epoch seconds): the STARTED event's time, or the claim's for a job a poll found.
    started_at: NotRequired[float]


class BuildSpec(TypedDict):
    """What acquire makes of a job (buildspec): the action's defaults applied, every guardrail passed."""

    image_id: str
    instance_type: str  # the first of instance_types (the instance's own type is Instance.instance_type)
    instance_types: list[str]  # in order of preference, each allowed: the launch tries them all
    platform: Literal["Linux", "Windows"]
    root_device_name: str
    root_volume_gib: int
    timeout_minutes: int
    command_timeout_seconds: int
    task_timeout_seconds: int
    command: str
    working_directory: str
    output_artifact_path: str


class Instance(TypedDict):
    """The job's build instance, as acquire made it available."""

    instance_id: str
    subnet_id: str
    launched_at: str  # when it was launched, ISO 8601 (acquire's clock: CreateFleet returns no LaunchTime)
    launched_epoch: float  # acquire's clock when the instance became the job's: CreateFleet/StartInstances returned
    acquire_seconds: NotRequired[float]  # how long acquire's launch, start or lease check took (AcquireSeconds)
    instance_type: NotRequired[str]  # the type EC2 launched (one of the build's instance_types)
    lifecycle: NotRequired[Literal["spot", "on-demand"]]
    member_id: NotRequired[str]  # its record in the registry table
    pool: NotRequired[str]  # the action key whose cap it counts against
    kind: NotRequired[str]  # "ephemeral" | "warm" | "stopped"
    boot: NotRequired[str]  # "launch" | "start" | "ready": how it became available (wait_online learns per kind)
    # A ready warm member acquire found Online in Systems Manager as it leased it (wait_online asks nothing more),
    # with what the agent reported.
    online_checked: NotRequired[bool]
    platform_type: NotRequired[str]
    agent_version: NotRequired[str]


class Grant(TypedDict):
    """What a queued job's WaitForCapacity step receives when capacity is granted to it (`$.grant`)."""

    member_id: str
    waited_seconds: int


class Result(TypedDict):
    """A job's result: stored in the jobs table, sent to CodePipeline exactly once."""

    succeeded: bool
    message: str
    failure_type: str | None
