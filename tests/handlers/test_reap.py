"""reap: what ends up in EC2 (marks, terminations), CloudWatch (the reaped count) and CodePipeline (failure answers)
after reaper passes at chosen times. Executions run on a state machine that waits an hour, so they stay RUNNING until
a test stops them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import emf
import pytest
from conftest import ACCOUNT, ACTION, ACTION_KEY, STACK, Cloud, Pipeline, wait_for
from test_poll import SCHEDULE, STARTED, PollerDied, die_at

from ec2_action import aws, buildspec, config, jobs, launcher, pools, queue, registration, registry
from ec2_action import codepipeline as cp_helpers
from ec2_action.config import ActionType
from ec2_action.handlers import poll, reap

INTERVAL = timedelta(minutes=5)  # the default reaper schedule
GRACE = timedelta(seconds=1800)  # conftest's orphan_grace_seconds
WAITING = {"StartAt": "Build", "States": {"Build": {"Type": "Wait", "Seconds": 3600, "End": True}}}


@pytest.fixture(autouse=True)
def waiting_state_machine(cloud: Cloud) -> None:
    arn = cloud.client("stepfunctions").create_state_machine(
        name=f"{STACK}-waiting-job", definition=json.dumps(WAITING), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
    )["stateMachineArn"]
    cloud.configure(state_machine_arn=arn)


def reap_pass(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, at: datetime) -> dict[str, list[str]]:
    """One scheduled reaper run at time `at`."""
    monkeypatch.setattr(reap, "now", lambda: at)
    return reap.handler({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, cloud.context)


def start_job(cloud: Cloud) -> tuple[str, str]:
    """A job as the poller leaves it: its jobs-table item (no instance_id yet) and a RUNNING execution."""
    job_id = str(uuid.uuid4())
    machine = cloud.settings["state_machine_arn"]
    execution_arn = machine.replace(":stateMachine:", ":execution:") + f":{job_id}"
    jobs.claim(job_id, "1", execution_arn, "{}", dict(ACTION), "app")
    cloud.client("stepfunctions").start_execution(stateMachineArn=machine, name=job_id, input="{}")
    return job_id, execution_arn


def stop(cloud: Cloud, execution_arn: str) -> None:
    cloud.client("stepfunctions").stop_execution(executionArn=execution_arn)


def mark_reported(cloud: Cloud, job_id: str) -> None:
    """The build stored and sent its result (its instance was left behind by a failed release)."""
    result = {"succeeded": False, "message": "The build failed with exit code 1.", "failure_type": "JobFailed"}
    jobs.store_result(job_id, result)
    assert jobs.claim_report(job_id, job_id)


def launch(cloud: Cloud, job_id: str | None, deadline: datetime | None = None, **extra: str) -> str:
    """A builder as acquire launches it (tags at launch); job_id None: an instance whose job tag is missing."""
    values = {"ec2-action:stack": STACK, **extra}
    if job_id:
        values["ec2-action:job-id"] = job_id
    values["ec2-action:deadline"] = (deadline or datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = [{"Key": key, "Value": value} for key, value in values.items()]
    return cloud.client("ec2").run_instances(
        ImageId=cloud.linux_ami, MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )["Instances"][0]["InstanceId"]


def described(cloud: Cloud, instance_id: str) -> tuple[str, dict[str, str]]:
    [reservation] = cloud.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance = reservation["Instances"][0]
    return instance["State"]["Name"], {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}


def mark_tags(cloud: Cloud, instance_id: str) -> dict[str, str]:
    return {key: value for key, value in described(cloud, instance_id)[1].items() if "orphan" in key}


def reaped_sum(capsys: pytest.CaptureFixture[str]) -> float:
    """The ReapedInstances the passes since the last look counted, from their EMF lines (as CloudWatch sums them):
    one line per pass, dimension Stack only, in the configured namespace."""
    reaped = [datum for datum in emf.data(capsys.readouterr().out) if datum.name == "ReapedInstances"]
    assert reaped, "no ReapedInstances line"
    for datum in reaped:
        assert (datum.namespace, datum.unit, datum.dimensions) == ("CodePipelineEc2Action", "Count", {"Stack": STACK})
    return sum(datum.value for datum in reaped)


# --- instances ------------------------------------------------------------------------------------------------------


def test_orphan_is_marked_then_terminated_on_a_later_pass_and_counted(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id, execution_arn = start_job(cloud)
    instance_id = launch(cloud, job_id)
    stop(cloud, execution_arn)
    mark_reported(cloud, job_id)
    t0 = datetime.now(UTC)

    first = reap_pass(cloud, monkeypatch, t0)

    assert first["marked"] == [instance_id] and first["terminated"] == []
    assert described(cloud, instance_id)[0] == "running"
    assert mark_tags(cloud, instance_id) == {
        "ec2-action:orphaned-at": t0.isoformat(timespec="milliseconds"),
        "ec2-action:orphan-reason": "finished: execution ABORTED",
    }
    assert reaped_sum(capsys) == 0

    same_time = reap_pass(cloud, monkeypatch, t0)  # not a later pass: e.g. the same pass delivered twice
    assert same_time["awaiting"] == [instance_id] and described(cloud, instance_id)[0] == "running"

    later = reap_pass(cloud, monkeypatch, t0 + timedelta(seconds=1))

    assert later["terminated"] == [instance_id]
    assert described(cloud, instance_id)[0] == "terminated"
    assert reaped_sum(capsys) == 1
    # No PutMetricData: the count reaches CloudWatch only through the function's output.
    assert cloud.client("cloudwatch").list_metrics(Namespace="CodePipelineEc2Action")["Metrics"] == []


def test_live_jobs_instance_is_never_touched(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    # acquire launched the instance (it writes nothing to the item; run_command writes instance_id later):
    # legitimacy comes from the tag
    job_id, _ = start_job(cloud)
    instance_id = launch(cloud, job_id)
    assert "instance_id" not in cloud.item(job_id)
    t0 = datetime.now(UTC)

    for minutes in (0, 5, 10, 60):
        summary = reap_pass(cloud, monkeypatch, t0 + timedelta(minutes=minutes))
        assert instance_id not in summary["marked"] + summary["terminated"]

    state, tags = described(cloud, instance_id)
    assert state == "running" and not any("orphan" in key for key in tags)


def test_mark_is_removed_when_the_instance_is_legitimate_again(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id, _ = start_job(cloud)
    t0 = datetime.now(UTC)
    instance_id = launch(
        cloud,
        job_id,
        **{"ec2-action:orphaned-at": t0.strftime("%Y-%m-%dT%H:%M:%SZ"), "ec2-action:orphan-reason": "unknown: x"},
    )

    summary = reap_pass(cloud, monkeypatch, t0 + 2 * INTERVAL)

    assert summary["unmarked"] == [instance_id] and summary["terminated"] == []
    assert described(cloud, instance_id)[0] == "running"
    assert mark_tags(cloud, instance_id) == {}


def test_instance_with_the_keep_tag_is_logged_but_never_touched(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    instance_id = launch(cloud, None, **{"ec2-action:keep": "debugging the image, ask alice"})
    t0 = datetime.now(UTC)

    for at in (t0, t0 + INTERVAL, t0 + timedelta(days=1)):
        summary = reap_pass(cloud, monkeypatch, at)
        assert summary["kept"] == [instance_id] and summary["marked"] == summary["terminated"] == []

    assert described(cloud, instance_id)[0] == "running" and mark_tags(cloud, instance_id) == {}
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line.get("instance_id") == instance_id and "ec2-action:keep" in line["message"] for line in logged)


def test_overdue_instance_of_a_running_execution_is_reaped(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id, _ = start_job(cloud)
    t0 = datetime.now(UTC)
    within_grace = launch(cloud, job_id, deadline=t0 - GRACE + timedelta(minutes=10))
    overdue = launch(cloud, job_id, deadline=t0 - GRACE - timedelta(minutes=1))

    assert reap_pass(cloud, monkeypatch, t0)["marked"] == [overdue]
    assert mark_tags(cloud, overdue)["ec2-action:orphan-reason"].startswith("overdue: deadline ")
    assert reap_pass(cloud, monkeypatch, t0 + INTERVAL)["terminated"] == [overdue]

    assert described(cloud, overdue)[0] == "terminated"
    assert described(cloud, within_grace)[0] == "running"


def test_unknown_instances_are_reaped_and_other_stacks_left_alone(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_job_tag = launch(cloud, None)
    no_item = launch(cloud, str(uuid.uuid4()))
    other_stack = launch(cloud, None, **{"ec2-action:stack": "someone-else"})
    t0 = datetime.now(UTC)

    first = reap_pass(cloud, monkeypatch, t0)
    assert sorted(first["marked"]) == sorted([no_job_tag, no_item])
    assert mark_tags(cloud, no_job_tag)["ec2-action:orphan-reason"] == "unknown: no ec2-action:job-id tag"
    assert mark_tags(cloud, no_item)["ec2-action:orphan-reason"].startswith("unknown: no jobs-table item")

    second = reap_pass(cloud, monkeypatch, t0 + INTERVAL)

    assert sorted(second["terminated"]) == sorted([no_job_tag, no_item])
    assert described(cloud, other_stack)[0] == "running" and mark_tags(cloud, other_stack) == {}
    assert reaped_sum(capsys) == 2


# --- jobs -----------------------------------------------------------------------------------------------------------


def started_build(cloud: Cloud, pipeline: Pipeline) -> tuple[str, str]:
    """A build the poller started from a real pipeline job (its continuation job taken): (job id, execution ARN)."""
    job_id = pipeline.start()
    poll.handler(STARTED, cloud.context)
    return job_id, cloud.item(job_id)["execution_arn"]


def open_job(cloud: Cloud, job_id: str) -> str:
    """The job the build answers: the continuation job the poller took."""
    open_job_id: str = cloud.item(job_id)["open_job_id"]
    assert open_job_id != job_id
    return open_job_id


def failures(pipeline: Pipeline, job_id: str) -> list[Any]:
    return [result for result in pipeline.results(job_id) if result.kind == "failure"]


def test_aborted_execution_gets_exactly_one_failure_naming_aborted(
    cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id, execution_arn = started_build(cloud, pipeline)
    continuation = open_job(cloud, job_id)
    instance_id = launch(cloud, job_id)
    stop(cloud, execution_arn)
    later = datetime.now(UTC) + timedelta(minutes=10)

    summary = reap_pass(cloud, monkeypatch, later)

    assert summary["failed_jobs"] == [job_id] and summary["terminated"] == [instance_id]
    assert described(cloud, instance_id)[0] == "terminated"
    for minutes in (5, 10):  # further passes send nothing more
        reap_pass(cloud, monkeypatch, later + timedelta(minutes=minutes))
    assert failures(pipeline, job_id) == []  # the first job was closed by the Details link
    [result] = pipeline.results(continuation)
    assert (result.kind, result.failure_type) == ("failure", "JobFailed")
    assert result.message.startswith(f"The execution {execution_arn} ended with status ABORTED without reporting")
    assert result.external_execution_id == execution_arn
    assert cloud.item(job_id)["reported_to"] == continuation
    assert reaped_sum(capsys) == 1


def test_aborted_after_the_continuation_stores_the_result_for_the_poller(
    cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = pipeline.start()
    # The poller published the Details link and died before it took the continuation job.
    die_at("after-call.codepipeline.PutJobSuccessResult", aws.client("codepipeline"))
    with pytest.raises(PollerDied):
        poll.handler(STARTED, cloud.context)
    execution_arn = cloud.item(job_id)["execution_arn"]
    continuation = pipeline.continuation_of(job_id)
    stop(cloud, execution_arn)

    assert reap_pass(cloud, monkeypatch, datetime.now(UTC) + timedelta(minutes=10))["failed_jobs"] == [job_id]
    assert failures(pipeline, continuation) == []  # not arrived yet: the result waits in the item

    summary = poll.handler(SCHEDULE, cloud.context)

    assert summary["answered"] == [continuation]
    [result] = failures(pipeline, continuation)
    assert "ended with status ABORTED without reporting the job" in result.message


def test_job_whose_execution_never_started_is_answered(
    cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The poller acknowledged the job and wrote its item, then died before StartExecution.
    job_id = pipeline.start()
    [job] = cloud.client("codepipeline").poll_for_jobs(actionTypeId=ACTION, maxBatchSize=1)["jobs"]
    cloud.client("codepipeline").acknowledge_job(jobId=job_id, nonce=job["nonce"])
    execution_arn = poll.execution_prefix(cloud.settings["state_machine_arn"]) + job_id
    jobs.claim(job_id, "1", execution_arn, "{}", dict(ACTION), "app")

    assert reap_pass(cloud, monkeypatch, datetime.now(UTC))["failed_jobs"] == []  # too young: it may still start
    assert reap_pass(cloud, monkeypatch, datetime.now(UTC) + timedelta(minutes=10))["failed_jobs"] == [job_id]

    [result] = pipeline.results(job_id)
    assert result.kind == "failure"
    assert result.message.startswith(f"The build was never started: no execution for job {job_id}")


def test_job_already_answered_is_not_answered_twice(
    cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, execution_arn = started_build(cloud, pipeline)
    continuation = open_job(cloud, job_id)
    result = {"succeeded": False, "message": "The build failed with exit code 2.", "failure_type": "JobFailed"}
    assert jobs.store_result_and_claim_report(job_id, result) is not None  # what ReportResult does
    assert cp_helpers.put_result(continuation, result, execution_arn)
    stop(cloud, execution_arn)

    summary = reap_pass(cloud, monkeypatch, datetime.now(UTC) + timedelta(minutes=10))

    assert summary["failed_jobs"] == []
    [answer] = pipeline.results(continuation)
    assert answer.message == "The build failed with exit code 2."


def test_running_job_is_not_answered(cloud: Cloud, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id, _ = started_build(cloud, pipeline)

    assert reap_pass(cloud, monkeypatch, datetime.now(UTC) + timedelta(hours=2))["failed_jobs"] == []
    assert failures(pipeline, job_id) == [] and pipeline.results(open_job(cloud, job_id)) == []


def test_learned_registration_times_in_the_jobs_table_are_not_jobs(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """wait_online's items (registration#<ami>#<type>) share the table: no pass judges them."""
    registration.learn(cloud.linux_ami, "t3.large", 42.0, None, datetime.now(UTC).timestamp())
    key = f"registration#{cloud.linux_ami}#t3.large"
    item = cloud.item(key)

    for days in (0, 1, 29):
        assert reap_pass(cloud, monkeypatch, datetime.now(UTC) + timedelta(days=days))["failed_jobs"] == []

    assert cloud.item(key) == item
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line for line in logged if line.get("level") == "ERROR"] == []
    assert poll.handler(SCHEDULE, cloud.context)["resumed"] == []  # nor are they unstarted jobs for the sweep
    assert cloud.item(key) == item


# --- pools ----------------------------------------------------------------------------------------------------------


def pool_action(cloud: Cloud) -> ActionType:
    """The fixture's action as a warm pool."""
    cloud.configure(actions=cloud.action_variables(image_id=cloud.linux_ami, strategy="warm", pool={"min_ready": 0}))
    action = config.load().action(ACTION)
    assert action is not None
    return action


def pool_member(
    action: ActionType, job_id: str | None = None, execution_arn: str | None = None, state: str = "ready"
) -> registry.Member:
    """A member with its instance, launched as the keeper (no job) or acquire (leased to a job) launches one."""
    settings = config.load()
    build = buildspec.pool_build(settings, action)
    member = registry.reserve(action, pools.build_config(settings, action, build), "warm", job_id, execution_arn)
    assert member is not None
    instance = launcher.launch(settings, None, build, member, pool_member=True, action=action)
    member = registry.launched(member, instance)
    if state != "launching":
        member = registry.mark(member, state, idle_since=time.time())
    assert member is not None
    return member


def test_a_ready_pool_member_is_never_an_orphan(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    member = pool_member(pool_action(cloud))
    t0 = datetime.now(UTC)

    for at in (t0, t0 + INTERVAL, t0 + timedelta(days=1)):
        summary = reap_pass(cloud, monkeypatch, at)
        assert {key: value for key, value in summary.items() if value} == {}

    assert described(cloud, member.instance_id)[0] == "running" and mark_tags(cloud, member.instance_id) == {}
    assert registry.member(ACTION_KEY, member.id) == member


def test_a_pool_instance_without_its_member_record_is_an_orphan(cloud: Cloud, monkeypatch: pytest.MonkeyPatch):
    member = pool_member(pool_action(cloud))
    assert registry.remove(member)  # the record went (a failed retirement), the instance stayed
    t0 = datetime.now(UTC)

    assert reap_pass(cloud, monkeypatch, t0)["marked"] == [member.instance_id]
    assert mark_tags(cloud, member.instance_id)["ec2-action:orphan-reason"] == (
        f"unknown: no member record {member.id} in pool {ACTION_KEY}"
    )
    assert reap_pass(cloud, monkeypatch, t0 + INTERVAL)["terminated"] == [member.instance_id]
    assert described(cloud, member.instance_id)[0] == "terminated"


@pytest.mark.parametrize("state", ["launching", "leased"])
def test_a_lease_whose_job_ended_is_recovered_and_a_live_one_is_not(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    action = pool_action(cloud)
    ended_job, ended_arn = start_job(cloud)
    live_job, live_arn = start_job(cloud)
    ended = pool_member(action, ended_job, ended_arn, state)
    live = pool_member(action, live_job, live_arn, state)
    stop(cloud, ended_arn)  # the execution crashed or was stopped: its release never ran

    summary = reap_pass(cloud, monkeypatch, datetime.now(UTC))

    assert summary["recovered"] == [ended.id] and summary["terminated"] == [ended.instance_id]
    assert described(cloud, ended.instance_id)[0] == "terminated"
    assert registry.member(ACTION_KEY, ended.id) is None
    assert registry.member(ACTION_KEY, live.id).lease_job == live_job
    assert described(cloud, live.instance_id)[0] == "running" and mark_tags(cloud, live.instance_id) == {}
    assert registry.counter(ACTION_KEY).instances == 1
    assert reaped_sum(capsys) == 1


def test_a_granted_member_whose_job_ended_before_taking_it_goes_back_to_the_pool(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, task_token
) -> None:
    action = pool_action(cloud)
    member = pool_member(action)
    token, arn = task_token("granted-job")  # its execution ends as soon as its task is answered
    queue.enqueue(action, "granted-job", arn, token, time.time() + 3600, member.config, "warm", time.time())
    assert queue.serve(config.load(), action) == ["granted-job"]
    wait_for(lambda: cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"] != "RUNNING")

    summary = reap_pass(cloud, monkeypatch, datetime.now(UTC))

    assert summary["returned"] == [member.id] and summary["terminated"] == []
    back = registry.member(ACTION_KEY, member.id)
    assert (back.state, back.lease_job, back.grant_token) == ("ready", None, None)
    assert described(cloud, member.instance_id)[0] == "running"


def test_records_without_a_live_instance_or_lease_are_removed_once_old_enough(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = pool_action(cloud)
    terminated = pool_member(action)
    cloud.client("ec2").terminate_instances(InstanceIds=[terminated.instance_id])  # behind the registry's back
    never_launched = registry.reserve(action, terminated.config, "warm")  # a keeper died before RunInstances
    running = pool_member(action)
    t0 = datetime.now(UTC)

    young = reap_pass(cloud, monkeypatch, t0)
    assert young["forgotten"] == [] and len(registry.members(ACTION_KEY)) == 3  # maybe being launched right now

    summary = reap_pass(cloud, monkeypatch, t0 + timedelta(minutes=10))

    assert sorted(summary["forgotten"]) == sorted([terminated.id, never_launched.id])
    assert [member.id for member in registry.members(ACTION_KEY)] == [running.id]
    assert registry.counter(ACTION_KEY).instances == 1
    assert summary["terminated"] == [] and summary["marked"] == []


def test_queue_entries_whose_execution_ended_are_dropped(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    action = pool_action(cloud)
    waiting_job, waiting_arn = start_job(cloud)
    gone_job, gone_arn = start_job(cloud)
    for job_id, arn in ((waiting_job, waiting_arn), (gone_job, gone_arn)):
        queue.enqueue(action, job_id, arn, f"token-{job_id}", time.time() + 3600, "0123456789abcdef", "warm")
    stop(cloud, gone_arn)  # stopped while it waited for capacity

    summary = reap_pass(cloud, monkeypatch, datetime.now(UTC))

    assert summary["dropped"] == [gone_job]
    assert [entry.job_id for entry in queue.entries(ACTION_KEY)] == [waiting_job]
    assert registry.counter(ACTION_KEY).queued == 1
    assert reap_pass(cloud, monkeypatch, datetime.now(UTC))["dropped"] == []
