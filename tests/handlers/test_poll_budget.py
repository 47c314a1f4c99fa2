"""poll's work per invocation is bounded: the report's wake-up never sweeps, a sweep stops within its time left, and
a fresh claim is left to the poller that holds it."""

from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ACTION, Cloud, Pipeline

from ec2_action import aws, jobs
from ec2_action import codepipeline as cp_helpers
from ec2_action.config import load
from ec2_action.handlers import poll

SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


class PollerDied(BaseException):
    """The poll function's process ends here: no handler code runs after it."""


def claim_and_die(cloud: Cloud, pipeline: Pipeline) -> str:
    """A job whose poller claimed it and died before acknowledging it."""
    job_id = pipeline.start()
    polled = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=10)["jobs"]
    [job] = [job for job in polled if job["id"] == job_id]

    def die(**_: Any) -> None:
        raise PollerDied

    client = aws.client("codepipeline")
    client.meta.events.register("before-call.codepipeline.AcknowledgeJob", die)
    with pytest.raises(PollerDied):
        poll._take(load(), job, {"started": []})
    client.meta.events.unregister("before-call.codepipeline.AcknowledgeJob", die)
    return job_id


def started_executions(cloud: Cloud) -> list[str]:
    sfn = cloud.client("stepfunctions")
    return [e["name"] for e in sfn.list_executions(stateMachineArn=cloud.settings["state_machine_arn"])["executions"]]


def test_the_sweep_leaves_a_fresh_claim_to_its_poller_and_resumes_it_once_stale(
    cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = claim_and_die(cloud, pipeline)

    assert poll.handler(SCHEDULE, cloud.context)["resumed"] == []
    assert started_executions(cloud) == []

    claimed_at = cloud.item(job_id)["claimed_at"]
    # The poller's clock only (the time module itself is shared with the local cloud's threads).
    later = SimpleNamespace(time=lambda: float(claimed_at) + poll.RESUME_AFTER_SECONDS + 1)
    monkeypatch.setattr(poll, "time", later)
    assert poll.handler(SCHEDULE, cloud.context)["resumed"] == [job_id]
    assert started_executions(cloud) == [job_id]


def test_the_report_s_wake_up_takes_jobs_but_never_sweeps(
    cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = claim_and_die(cloud, pipeline)
    monkeypatch.setattr(poll, "RESUME_AFTER_SECONDS", -1)

    assert poll.handler(cp_helpers.CONTINUATION_WAKE_UP, cloud.context)["resumed"] == []
    assert started_executions(cloud) == []
    assert poll.handler(SCHEDULE, cloud.context)["resumed"] == [job_id]


def test_a_sweep_stops_within_its_time_left_and_the_next_one_goes_on(
    cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_ids = [claim_and_die(cloud, pipeline) for _ in range(3)]
    monkeypatch.setattr(poll, "RESUME_AFTER_SECONDS", -1)
    monkeypatch.setattr(poll, "JOBS_PER_SCHEDULE", 0)  # the sweep alone
    remaining = iter([poll.MIN_REMAINING_MS + 1, poll.MIN_REMAINING_MS + 1, poll.MIN_REMAINING_MS - 1])
    monkeypatch.setattr(cloud.context, "get_remaining_time_in_millis", lambda: next(remaining))

    first = poll.handler(SCHEDULE, cloud.context)["resumed"]

    assert len(first) == 2
    monkeypatch.setattr(cloud.context, "get_remaining_time_in_millis", lambda: poll.MIN_REMAINING_MS + 1)
    second = poll.handler(SCHEDULE, cloud.context)["resumed"]
    assert sorted(first + second) == sorted(job_ids)
    assert sorted(started_executions(cloud)) == sorted(job_ids)
    assert all(jobs.get(job_id)["claimed_at"] for job_id in job_ids)
