"""poll against the local cloud's CodePipeline job API: acknowledgement, idempotent starts, continuation, secrets."""

import json
from typing import Any

import pytest
from conftest import ACTION, Cloud, Pipeline

from ec2_action import aws, jobs
from ec2_action import codepipeline as cp_helpers
from ec2_action.config import load
from ec2_action.handlers import poll
from emulator import codepipeline, faults
from harness.matrix import SDK_ATTEMPTS

STARTED = {
    "source": "aws.codepipeline",
    "detail-type": "CodePipeline Action Execution State Change",
    "detail": {"pipeline": "app", "stage": "Build", "action": "Build", "state": "STARTED", "type": dict(ACTION)},
}
SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@pytest.fixture(autouse=True)
def resume_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests sweep right after a poller died; a sweep leaves a claim to its poller for RESUME_AFTER_SECONDS
    first (tests/handlers/test_poll_budget.py)."""
    monkeypatch.setattr(poll, "RESUME_AFTER_SECONDS", -1)


def executions(cloud: Cloud) -> list[dict[str, Any]]:
    sfn = cloud.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=cloud.settings["state_machine_arn"])["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def job_status(job_id: str) -> str:
    return next(job.status for job in codepipeline.jobs() if job.id == job_id)


def test_started_event_starts_one_execution_named_after_the_job(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()

    summary = poll.handler(STARTED, cloud.context)

    assert summary["started"] == [job_id]
    assert job_status(job_id) == "InProgress"
    [execution] = executions(cloud)
    assert execution["name"] == job_id
    job = json.loads(execution["input"])["job"]
    assert job["id"] == job_id
    assert job["action"] == ACTION
    assert job["configuration"] == {"Command": "make test", "ImageId": cloud.linux_ami}
    assert job["pipeline"]["name"] == "app" and job["pipeline"]["stage"] == "Build"
    assert job["input_artifact"]["bucket"] == "artifact-bucket" and job["output_artifact"] is None
    item = cloud.item(job_id)
    assert item["open_job_id"] == job_id and item["execution_arn"] == execution["executionArn"]
    assert item["expires_at"] - item["created_at"] == 2 * 24 * 3600


def test_duplicate_event_and_a_second_poller_start_nothing_twice(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    # a second worker polled the same job before the first acknowledged it
    [seen_by_other_worker] = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]

    assert poll.handler(STARTED, cloud.context)["started"] == [job_id]
    assert poll.handler(STARTED, cloud.context)["started"] == []  # the duplicate event
    assert poll.handler(SCHEDULE, cloud.context)["started"] == []  # the sweep
    summary: dict[str, list[str]] = {"started": [], "failed": []}
    poll._take(load(), seen_by_other_worker, summary)  # the other worker goes on with its copy

    assert summary == {"started": [], "failed": []}
    assert [e["name"] for e in executions(cloud)] == [job_id]
    assert pipeline.results(job_id) == []


def test_wrong_nonce_is_skipped(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()

    def stale_nonce(parsed: dict[str, Any], **_: Any) -> None:
        for job in parsed.get("jobs", []):
            job["nonce"] = "0"

    client = aws.client("codepipeline")
    client.meta.events.register("after-call.codepipeline.PollForJobs", stale_nonce)
    assert poll.handler(STARTED, cloud.context)["started"] == []
    assert executions(cloud) == []
    assert job_status(job_id) != "InProgress"
    assert poll.handler(SCHEDULE, cloud.context)["resumed"] == []  # the claim's nonce is not the job's: no start

    client.meta.events.unregister("after-call.codepipeline.PollForJobs", stale_nonce)
    assert poll.handler(STARTED, cloud.context)["started"] == [job_id]


def test_artifact_credentials_never_leave_the_poller(
    cloud: Cloud, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = pipeline.start()
    credentials = next(job.data["artifactCredentials"] for job in codepipeline.jobs() if job.id == job_id)

    poll.handler(STARTED, cloud.context)

    logged = capsys.readouterr().out
    [execution] = executions(cloud)
    stored = json.dumps(cloud.item(job_id), default=str)
    for place in (logged, execution["input"], stored):
        assert "artifactCredentials" not in place
        for secret in credentials.values():
            assert secret not in place
    assert all(json.loads(line)["job_id"] == job_id for line in logged.splitlines()[:-1])


def test_events_for_other_action_types_poll_nothing(cloud: Cloud, pipeline: Pipeline) -> None:
    pipeline.start()
    other = {**STARTED, "detail": {**STARTED["detail"], "type": {**ACTION, "provider": "Someone-Else"}}}
    assert poll.handler(other, cloud.context)["started"] == []
    assert executions(cloud) == []


def test_unknown_continuation_is_failed_with_a_reason(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    poll.handler(STARTED, cloud.context)
    foreign = "arn:aws:states:us-east-1:123456789012:execution:someone-else:abc"
    cloud.client("codepipeline").put_job_success_result(jobId=job_id, continuationToken=foreign)
    continuation = pipeline.continuation_of(job_id)

    summary = poll.handler(SCHEDULE, cloud.context)

    assert summary["failed"] == [continuation]
    [result] = pipeline.results(continuation)
    assert result.kind == "failure" and result.failure_type == "JobFailed"
    assert foreign in result.message and "names no build of this module" in result.message


def test_little_time_left_polls_nothing(cloud: Cloud, pipeline: Pipeline) -> None:
    pipeline.start()
    cloud.context.remaining_ms = 5_000
    assert poll.handler(STARTED, cloud.context)["started"] == []


def artifact(name: str, location_type: str = "S3") -> dict[str, Any]:
    return {"name": name, "location": {"type": location_type, "s3Location": {"bucketName": "b", "objectKey": "k"}}}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"inputArtifacts": [artifact("a"), artifact("b")]}, "2 input artifacts; at most one is supported"),
        ({"outputArtifacts": [artifact("out", "CodeCommit")]}, "output artifact 'out' is not stored in S3"),
    ],
)
def test_unsupported_artifacts_are_refused(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(cp_helpers.UnsupportedJob, match=reason):
        cp_helpers.sanitize_job({"id": "j", "data": data})


# --- a poller that dies between PollForJobs and StartExecution --------------------------------------------------------


class PollerDied(BaseException):
    """The poll function's process ends here (a timeout, an out-of-memory kill): no handler code runs after it."""


def die_at(event_name: str, client: Any) -> None:
    """Kill the poller once at a botocore event, e.g. after-call.codepipeline.AcknowledgeJob."""
    fired: list[bool] = []

    def hook(**_: Any) -> None:
        if not fired:
            fired.append(True)
            raise PollerDied(event_name)

    client.meta.events.register(event_name, hook)


def acknowledgements(job_id: str) -> int:
    return next(job.acknowledge_calls for job in codepipeline.jobs() if job.id == job_id)


@pytest.mark.parametrize(
    ("client_of", "event_name"),
    [
        (lambda: aws.client("codepipeline"), "after-call.codepipeline.PollForJobs"),
        (lambda: aws.table(load().jobs_table).meta.client, "after-call.dynamodb.UpdateItem"),
        (lambda: aws.client("codepipeline"), "after-call.codepipeline.AcknowledgeJob"),
        (lambda: aws.client("stepfunctions"), "before-call.sfn.StartExecution"),
    ],
    ids=["after-poll", "after-claim", "after-acknowledge", "before-start-execution"],
)
def test_a_poller_dying_at_any_point_leaves_a_job_the_sweep_starts_once(
    cloud: Cloud, pipeline: Pipeline, client_of: Any, event_name: str
) -> None:
    job_id = pipeline.start()
    die_at(event_name, client_of())

    with pytest.raises(PollerDied):
        poll.handler(STARTED, cloud.context)
    assert executions(cloud) == []

    first_sweep = poll.handler(SCHEDULE, cloud.context)
    poll.handler(SCHEDULE, cloud.context)  # and a later one finds nothing left to do

    assert job_id in first_sweep["started"] + first_sweep["resumed"]
    assert [e["name"] for e in executions(cloud)] == [job_id]
    assert job_status(job_id) == "InProgress"
    item = cloud.item(job_id)
    assert item is not None and item["open_job_id"] == job_id
    assert "artifactCredentials" not in item["execution_input"]


def test_a_throttled_start_is_retried_by_the_sweep_not_failed(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    # Throttled on every attempt the SDK makes (it retries throttling): the poller's one StartExecution call fails.
    faults.inject_api_error(
        "stepfunctions", "StartExecution", "ThrottlingException", "Rate exceeded", times=SDK_ATTEMPTS
    )

    assert poll.handler(STARTED, cloud.context)["started"] == []
    assert "ThrottlingException" in cloud.item(job_id)["start_error"]

    assert poll.handler(SCHEDULE, cloud.context)["resumed"] == [job_id]
    assert [e["name"] for e in executions(cloud)] == [job_id]
    assert pipeline.results(job_id) == []  # not failed: the build runs


def test_a_claim_is_taken_over_when_codepipeline_dispatches_the_job_again(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    [dispatched] = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]
    stale = {**dispatched, "nonce": "1"}  # an earlier dispatch of the job, whose poller died after its claim
    die_at("after-call.dynamodb.UpdateItem", aws.table(load().jobs_table).meta.client)
    with pytest.raises(PollerDied):
        poll._take(load(), stale, {"started": []})

    assert poll.handler(STARTED, cloud.context)["started"] == [job_id]
    assert cloud.item(job_id)["nonce"] == dispatched["nonce"]


def test_pollers_racing_for_a_job_acknowledge_it_once(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    [copy] = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]

    assert poll._take(load(), copy, {"started": []}) is True
    for _ in range(3):  # more pollers with the same dispatch of the job
        assert poll._take(load(), copy, {"started": []}) is False
        assert poll.handler(STARTED, cloud.context)["started"] == []

    assert acknowledgements(job_id) == 1
    assert [e["name"] for e in executions(cloud)] == [job_id]


def test_one_invocation_takes_a_bounded_number_of_jobs(cloud: Cloud, pipeline: Pipeline) -> None:
    started = [pipeline.start() for _ in range(poll.JOBS_PER_EVENT + 2)]

    first = poll.handler(STARTED, cloud.context)["started"]
    second = poll.handler(STARTED, cloud.context)["started"]

    assert len(first) == poll.JOBS_PER_EVENT
    assert sorted(first + second) == sorted(started)
    assert all(acknowledgements(job_id) == 1 for job_id in started)


def test_a_continuation_job_whose_poller_died_before_acknowledging_it_is_answered(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    job_id = pipeline.start()
    poll.handler(STARTED, cloud.context)
    item = cloud.item(job_id)
    assert jobs.mark_continued(job_id) is not None
    cp_helpers.put_continuation(job_id, item["execution_arn"], "running")
    continuation = pipeline.continuation_of(job_id)
    die_at("after-call.dynamodb.UpdateItem", aws.table(load().jobs_table).meta.client)
    with pytest.raises(PollerDied):
        poll.handler(SCHEDULE, cloud.context)
    assert job_status(continuation) != "InProgress"  # recorded as the open job, never acknowledged

    stored = jobs.store_result(job_id, {"succeeded": True, "message": "Build succeeded.", "failure_type": None})

    assert cp_helpers.answer_open_job(stored) == continuation
    [result] = pipeline.results(continuation)
    assert result.kind == "success"
    assert job_status(continuation) == "Succeeded"


def test_a_type_that_cannot_be_polled_stops_neither_the_other_types_nor_the_sweep(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    job_id = pipeline.start()
    gone = {**ACTION, "version": "9"}  # configured here, deleted from CodePipeline by hand
    cloud.configure(actions=cloud.action_variables(versions=["9", ACTION["version"]]))
    assert load().action(gone) is not None
    die_at("before-call.sfn.StartExecution", aws.client("stepfunctions"))
    with pytest.raises(PollerDied):
        poll.handler(STARTED, cloud.context)

    summary = poll.handler(SCHEDULE, cloud.context)

    assert summary["resumed"] == [job_id]  # the sweep ran after the deleted type's ActionTypeNotFoundException
