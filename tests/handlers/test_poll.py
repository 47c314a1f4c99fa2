"""poll against the local cloud's CodePipeline job API: acknowledgement, idempotent starts, the Details link and the
continuation job, secrets."""

import json
from typing import Any

import pytest
from conftest import ACTION, Cloud, Pipeline

from ec2_action import aws, jobs
from ec2_action import codepipeline as cp_helpers
from ec2_action.config import load
from ec2_action.handlers import poll, report
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


def empty_summary() -> dict[str, list[str]]:
    """What poll.handler collects (poll._take adds to it)."""
    return {key: [] for key in ("started", "linked", "continued", "resumed", "delivered", "answered", "failed")}


def test_started_event_starts_one_execution_named_after_the_job(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()

    summary = poll.handler(STARTED, cloud.context)

    assert summary["started"] == [job_id]
    [execution] = executions(cloud)
    assert execution["name"] == job_id
    job = json.loads(execution["input"])["job"]
    assert job["id"] == job_id
    assert job["action"] == ACTION
    assert job["configuration"] == {"Command": "make test", "ImageId": cloud.linux_ami}
    assert job["pipeline"]["name"] == "app" and job["pipeline"]["stage"] == "Build"
    assert job["input_artifact"]["bucket"] == "artifact-bucket" and job["output_artifact"] is None
    item = cloud.item(job_id)
    assert item["execution_arn"] == execution["executionArn"]
    assert item["expires_at"] - item["created_at"] == 2 * 24 * 3600


def test_a_started_jobs_details_link_is_published_and_its_continuation_job_taken_at_once(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    job_id = pipeline.start()

    summary = poll.handler(STARTED, cloud.context)

    execution_arn = cloud.item(job_id)["execution_arn"]
    # The first job is closed with the execution as its continuation token: the console's Details link opens it.
    [link] = pipeline.results(job_id)
    assert (link.kind, link.continuation_token, link.external_execution_id) == ("success", execution_arn, execution_arn)
    assert link.percent_complete == 0 and job_status(job_id) == "Succeeded"
    # The continuation job CodePipeline created for it was claimed and acknowledged by the same invocation.
    continuation = pipeline.continuation_of(job_id)
    assert summary["started"] == summary["linked"] == [job_id]
    assert summary["continued"] == [continuation] and summary["answered"] == []
    assert job_status(continuation) == "InProgress" and acknowledgements(continuation) == 1
    assert pipeline.results(continuation) == []  # answered by the report when the build ends
    item = cloud.item(job_id)
    assert item["continued"] is True and item["open_job_id"] == continuation and item["open_job_nonce"]
    assert "reported_to" not in item
    assert poll.handler(SCHEDULE, cloud.context) == empty_summary()  # nothing left to take or sweep


def test_a_job_whose_answer_is_already_claimed_is_not_continued(cloud: Cloud, pipeline: Pipeline) -> None:
    """The build ended (here: an invalid configuration) and its report claimed the first job between the poller's
    StartExecution and its Details link: the link is moot, the first job gets the result and nothing else."""
    job_id = pipeline.start()
    reported: list[dict[str, Any]] = []

    def report_at_once(**_: Any) -> None:
        if not reported:
            execution_arn = cloud.item(job_id)["execution_arn"]
            job = {"id": job_id}
            error = {"Error": "InvalidJobConfiguration", "Cause": "ImageId is missing"}
            state = {"job": job, "error": error, "failed_step": "AcquireInstance"}
            reported.append(report.handler({"execution_arn": execution_arn, "state": state}, cloud.context))

    aws.client("stepfunctions").meta.events.register("after-call.sfn.StartExecution", report_at_once)
    summary = poll.handler(STARTED, cloud.context)

    assert reported[0]["reported_to"] == job_id
    assert summary["started"] == [job_id] and summary["linked"] == summary["continued"] == []
    [result] = pipeline.results(job_id)  # the result; no continuation token
    assert (result.kind, result.failure_type, result.continuation_token) == ("failure", "ConfigurationError", None)
    item = cloud.item(job_id)
    assert "continued" not in item and item["reported_to"] == job_id
    assert [job.id for job in codepipeline.jobs()] == [job_id]  # no continuation job was created


def test_a_details_link_that_cannot_be_published_leaves_the_first_job_to_the_report(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    job_id = pipeline.start()
    faults.inject_api_error(
        "codepipeline", "PutJobSuccessResult", "ThrottlingException", "Rate exceeded", times=SDK_ATTEMPTS
    )

    summary = poll.handler(STARTED, cloud.context)

    assert summary["started"] == [job_id] and summary["linked"] == summary["continued"] == []
    assert job_status(job_id) == "InProgress" and pipeline.results(job_id) == []
    item = cloud.item(job_id)
    assert item["open_job_id"] == job_id and item["open_job_nonce"] == item["nonce"] and "continued" not in item
    state = {"job": {"id": job_id}, "error": {"Error": "InvalidJobConfiguration", "Cause": "bad"}}
    assert report.handler({"execution_arn": item["execution_arn"], "state": state}, cloud.context)["reported_to"] == (
        job_id
    )
    [result] = pipeline.results(job_id)
    assert (result.kind, result.continuation_token) == ("failure", None)


def test_duplicate_event_and_a_second_poller_start_nothing_twice(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    # a second worker polled the same job before the first acknowledged it
    [seen_by_other_worker] = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]

    assert poll.handler(STARTED, cloud.context)["started"] == [job_id]
    assert poll.handler(STARTED, cloud.context)["started"] == []  # the duplicate event
    assert poll.handler(SCHEDULE, cloud.context)["started"] == []  # the sweep
    summary = empty_summary()
    poll._take(load(), seen_by_other_worker, summary)  # the other worker goes on with its copy

    assert summary == empty_summary()
    assert [e["name"] for e in executions(cloud)] == [job_id]
    [link] = pipeline.results(job_id)  # the Details link, once
    assert link.continuation_token == cloud.item(job_id)["execution_arn"]


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

    poll.handler(STARTED, cloud.context)

    continuation = pipeline.continuation_of(job_id)
    credentials = [job.data["artifactCredentials"] for job in codepipeline.jobs()]
    assert len(credentials) == 2  # the first job's and the continuation job's
    logged = capsys.readouterr().out
    [execution] = executions(cloud)
    stored = json.dumps(cloud.item(job_id), default=str)
    for place in (logged, execution["input"], stored):
        assert "artifactCredentials" not in place
        for secret in [value for job_credentials in credentials for value in job_credentials.values()]:
            assert secret not in place
    lines = [json.loads(line) for line in logged.splitlines()[:-1]]  # the last one is the poll's summary
    assert {line["job_id"] for line in lines} == {job_id, continuation}
    assert all(line["first_job_id"] == job_id for line in lines if line["job_id"] == continuation)


def test_events_for_other_action_types_poll_nothing(cloud: Cloud, pipeline: Pipeline) -> None:
    pipeline.start()
    other = {**STARTED, "detail": {**STARTED["detail"], "type": {**ACTION, "provider": "Someone-Else"}}}
    assert poll.handler(other, cloud.context)["started"] == []
    assert executions(cloud) == []


def test_unknown_continuation_is_failed_with_a_reason(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    client = cloud.client("codepipeline")  # someone else's worker takes the job and continues it
    [job] = client.poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]
    client.acknowledge_job(jobId=job_id, nonce=job["nonce"])
    foreign = "arn:aws:states:us-east-1:123456789012:execution:someone-else:abc"
    client.put_job_success_result(jobId=job_id, continuationToken=foreign)
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


def die_at(event_name: str, client: Any, occurrence: int = 1) -> None:
    """Kill the poller once at a botocore event, e.g. after-call.codepipeline.AcknowledgeJob (its `occurrence`th)."""
    fired: list[bool] = []

    def hook(**_: Any) -> None:
        fired.append(True)
        if len(fired) == occurrence:
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
    later = poll.handler(SCHEDULE, cloud.context)  # takes the continuation job if the first one left it

    assert job_id in first_sweep["started"] + first_sweep["resumed"]
    [continuation] = first_sweep["continued"] + later["continued"]
    assert poll.handler(SCHEDULE, cloud.context) == empty_summary()  # and a third finds nothing left to do
    assert [e["name"] for e in executions(cloud)] == [job_id]
    assert acknowledgements(continuation) == 1 and job_status(continuation) == "InProgress"
    [link] = pipeline.results(job_id)
    assert link.continuation_token == cloud.item(job_id)["execution_arn"]
    item = cloud.item(job_id)
    assert item is not None and item["open_job_id"] == continuation
    assert "artifactCredentials" not in item["execution_input"]


def test_a_poller_dying_between_recording_the_continuation_and_publishing_it_leaves_a_job_that_is_answered(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    job_id = pipeline.start()
    die_at("before-call.codepipeline.PutJobSuccessResult", aws.client("codepipeline"))
    with pytest.raises(PollerDied):
        poll.handler(STARTED, cloud.context)
    item = cloud.item(job_id)
    assert item["continued"] is True and "open_job_id" not in item and job_status(job_id) == "InProgress"
    state = {"job": {"id": job_id}, "error": {"Error": "InvalidJobConfiguration", "Cause": "bad"}}

    report.handler({"execution_arn": item["execution_arn"], "state": state}, cloud.context)  # the build ends
    for _ in range(2):
        poll.handler(SCHEDULE, cloud.context)

    answers = [result for job in codepipeline.jobs() for result in pipeline.results(job.id)]
    assert [result.failure_type for result in answers if result.kind == "failure"] == ["ConfigurationError"]


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
    [link] = pipeline.results(job_id)  # not failed: the build runs, and its Details link is published
    assert link.kind == "success" and link.continuation_token == cloud.item(job_id)["execution_arn"]


def test_a_claim_is_taken_over_when_codepipeline_dispatches_the_job_again(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    [dispatched] = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]
    stale = {**dispatched, "nonce": "1"}  # an earlier dispatch of the job, whose poller died after its claim
    die_at("after-call.dynamodb.UpdateItem", aws.table(load().jobs_table).meta.client)
    with pytest.raises(PollerDied):
        poll._take(load(), stale, empty_summary())

    assert poll.handler(STARTED, cloud.context)["started"] == [job_id]
    assert cloud.item(job_id)["nonce"] == dispatched["nonce"]


def test_pollers_racing_for_a_job_acknowledge_it_once(cloud: Cloud, pipeline: Pipeline) -> None:
    job_id = pipeline.start()
    [copy] = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]

    assert poll._take(load(), copy, empty_summary()) is True
    for _ in range(3):  # more pollers with the same dispatch of the job
        assert poll._take(load(), copy, empty_summary()) is False
        assert poll.handler(STARTED, cloud.context)["started"] == []

    assert acknowledgements(job_id) == 1
    assert [e["name"] for e in executions(cloud)] == [job_id]


def test_one_invocation_takes_a_bounded_number_of_jobs(cloud: Cloud, pipeline: Pipeline) -> None:
    """A continuation job is one of the jobs an invocation takes: a burst leaves some to the next invocations."""
    started = [pipeline.start() for _ in range(poll.JOBS_PER_EVENT + 2)]

    summaries = [poll.handler(STARTED, cloud.context)]
    while summaries[-1]["started"] or summaries[-1]["continued"]:
        summaries.append(poll.handler(STARTED, cloud.context))

    assert all(len(s["started"]) + len(s["continued"]) <= poll.JOBS_PER_EVENT for s in summaries)
    assert len(summaries[0]["started"]) + len(summaries[0]["continued"]) == poll.JOBS_PER_EVENT
    assert sorted(job_id for s in summaries for job_id in s["started"]) == sorted(started)
    continuations = sorted(pipeline.continuation_of(job_id) for job_id in started)
    assert sorted(job_id for s in summaries for job_id in s["continued"]) == continuations
    assert all(acknowledgements(job_id) == 1 for job_id in started + continuations)


def test_a_continuation_job_whose_poller_died_before_acknowledging_it_is_answered(
    cloud: Cloud, pipeline: Pipeline
) -> None:
    job_id = pipeline.start()
    # The poller's writes: the claim, the continuation (Details link), the continuation job's claim; then it dies.
    die_at("after-call.dynamodb.UpdateItem", aws.table(load().jobs_table).meta.client, occurrence=3)
    with pytest.raises(PollerDied):
        poll.handler(STARTED, cloud.context)
    continuation = pipeline.continuation_of(job_id)
    assert cloud.item(job_id)["open_job_id"] == continuation
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
