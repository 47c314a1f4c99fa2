"""poll with several versions of an action served at once (the upgrade path: a new version beside an old one)."""

from __future__ import annotations

import json
from typing import Any

from conftest import ACTION, Cloud, Pipeline

from ec2_action.handlers import poll
from emulator import codepipeline

V2 = {**ACTION, "version": "2"}
SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def started_event(type_id: dict[str, str]) -> dict[str, Any]:
    return {
        "source": "aws.codepipeline",
        "detail-type": "CodePipeline Action Execution State Change",
        "detail": {"state": "STARTED", "type": dict(type_id)},
    }


def serve(cloud: Cloud, versions: list[str]) -> None:
    """EC2_ACTION_CONFIG as the module writes it when the action's served versions are `versions`."""
    cloud.configure(actions=cloud.action_variables(versions=versions))


def add_version_2_pipeline(pipeline: Pipeline) -> Pipeline:
    """Register version 2 of the action (same definition as 1) and a pipeline "app-v2" whose build uses it."""
    client = pipeline.client
    [v1] = [t for t in client.list_action_types(actionOwnerFilter="Custom")["actionTypes"] if t["id"] == ACTION]
    client.create_custom_action_type(
        category=V2["category"],
        provider=V2["provider"],
        version=V2["version"],
        settings=v1["settings"],
        configurationProperties=v1["actionConfigurationProperties"],
        inputArtifactDetails=v1["inputArtifactDetails"],
        outputArtifactDetails=v1["outputArtifactDetails"],
    )
    definition = client.get_pipeline(name=pipeline.name)["pipeline"]
    definition["name"] = "app-v2"
    definition["stages"][1]["actions"][0]["actionTypeId"] = V2
    client.create_pipeline(pipeline=definition)
    return Pipeline(client, "app-v2")


def execution_action(cloud: Cloud, job_id: str) -> dict[str, str]:
    """The action type id the poller handed to the job's execution."""
    sfn = cloud.client("stepfunctions")
    arn = cloud.settings["state_machine_arn"].replace(":stateMachine:", ":execution:") + ":" + job_id
    return json.loads(sfn.describe_execution(executionArn=arn)["input"])["job"]["action"]


def job_status(job_id: str) -> str:
    return next(job.status for job in codepipeline.jobs() if job.id == job_id)


def test_every_served_version_is_polled_and_its_event_polls_only_it(cloud: Cloud, pipeline: Pipeline) -> None:
    serve(cloud, ["2", "1"])
    pipeline_v2 = add_version_2_pipeline(pipeline)
    job_v1, job_v2 = pipeline.start(), pipeline_v2.start()

    assert poll.handler(started_event(V2), cloud.context)["started"] == [job_v2]
    assert job_status(job_v1) == "Queued"  # the version 2 event polled version 2 only
    assert poll.handler(SCHEDULE, cloud.context)["started"] == [job_v1]  # the sweep polls every served version

    assert execution_action(cloud, job_v1) == ACTION
    assert execution_action(cloud, job_v2) == V2


def test_a_version_no_longer_served_is_not_polled(cloud: Cloud, pipeline: Pipeline) -> None:
    serve(cloud, ["2"])
    pipeline_v2 = add_version_2_pipeline(pipeline)
    job_v1, job_v2 = pipeline.start(), pipeline_v2.start()

    assert poll.handler(started_event(ACTION), cloud.context)["started"] == []
    assert poll.handler(SCHEDULE, cloud.context)["started"] == [job_v2]
    assert job_status(job_v1) == "Queued"
