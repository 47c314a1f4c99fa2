"""queue: jobs at the cap wait in FIFO order with their task tokens; serve grants capacity in one transaction per
entry and resumes the execution; expire fails it with the minutes it waited (DynamoDB and Step Functions in moto,
executions really waiting on their tokens)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from conftest import ACTION_KEY, Cloud, wait_for
from test_registry import CONFIG, ready_member, warm

from ec2_action import config, queue, registry

Token = Callable[[str], tuple[str, str]]


def execution(cloud: Cloud, arn: str) -> dict[str, Any]:
    """The execution once it has left RUNNING (its task took the answer)."""
    sfn = cloud.client("stepfunctions")
    return wait_for(
        lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e, what="the execution"
    )


def queued(cloud: Cloud, task_token: Token, action: Any, name: str, now: float, **entry: Any) -> tuple[str, str]:
    """A job queued at `now` with the token of an execution waiting on it; (job id, execution ARN)."""
    token, arn = task_token(name)
    queue.enqueue(
        action, name, arn, token, deadline=entry.pop("deadline", now + 3600), config=CONFIG,
        kind=entry.pop("kind", "warm"), now=now,
    )  # fmt: skip
    return name, arn


def test_entries_are_kept_in_the_order_jobs_queued(cloud: Cloud) -> None:
    action = warm(cloud)
    for job_id, at in (("b", 1_700_000_000.5), ("a", 1_700_000_001.0), ("c", 1_700_000_000.0)):
        queue.enqueue(action, job_id, "arn", f"token-{job_id}", deadline=at + 60, config=CONFIG, kind="warm", now=at)
    assert [entry.job_id for entry in queue.entries(ACTION_KEY)] == ["c", "b", "a"]
    assert registry.counter(ACTION_KEY).queued == 3


def test_a_retried_enqueue_keeps_the_jobs_place_with_the_new_token(cloud: Cloud) -> None:
    action = warm(cloud)
    queue.enqueue(action, "a", "arn", "token-1", deadline=100, config=CONFIG, kind="warm", now=1.0)
    queue.enqueue(action, "b", "arn", "token-b", deadline=100, config=CONFIG, kind="warm", now=2.0)
    queue.enqueue(action, "a", "arn", "token-2", deadline=100, config=CONFIG, kind="warm", now=3.0)
    assert [(e.job_id, e.token) for e in queue.entries(ACTION_KEY)] == [("a", "token-2"), ("b", "token-b")]
    assert registry.counter(ACTION_KEY).queued == 2


def test_serve_grants_in_fifo_order_while_capacity_lasts(cloud: Cloud, task_token: Token) -> None:
    action = warm(cloud, cap=2)
    ready_id = ready_member(action)
    now = time.time()
    first, first_arn = queued(cloud, task_token, action, "first", now - 30)
    second, second_arn = queued(cloud, task_token, action, "second", now - 20)
    third, third_arn = queued(cloud, task_token, action, "third", now - 10)

    granted = queue.serve(config.load(), action, now=now)

    assert granted == [first, second]  # the ready member, then the one free slot; the cap stops the third
    grant = json.loads(execution(cloud, first_arn)["output"])
    assert grant == {"member_id": ready_id, "waited_seconds": 30}
    second_grant = json.loads(execution(cloud, second_arn)["output"])
    assert second_grant["waited_seconds"] == 20
    members = {m.id: m for m in registry.members(ACTION_KEY)}
    assert members[ready_id].lease_job == first and members[ready_id].state == "leased"
    reserved = members[second_grant["member_id"]]
    assert (reserved.state, reserved.lease_job, reserved.lease_execution) == ("reserved", second, second_arn)
    assert reserved.grant_token  # until the execution picks its member up
    assert [e.job_id for e in queue.entries(ACTION_KEY)] == [third]
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=2, queued=1)
    assert cloud.client("stepfunctions").describe_execution(executionArn=third_arn)["status"] == "RUNNING"


def test_the_head_waits_and_nobody_passes_it(cloud: Cloud, task_token: Token) -> None:
    """A job of another configuration at the head of a full pool waits; the job behind it, which a ready member
    could serve, does not pass it... until the ready member gives way to the head."""
    action = warm(cloud, cap=1)
    ready_id = ready_member(action, config_hash="ffffffffffffffff")
    instance_id = registry.member(ACTION_KEY, ready_id).instance_id
    now = time.time()
    head, head_arn = queued(cloud, task_token, action, "head", now - 20)

    assert queue.serve(config.load(), action, now=now) == [head]

    grant = json.loads(execution(cloud, head_arn)["output"])
    assert grant["member_id"] != ready_id  # the idle member of another configuration was retired for it
    assert registry.member(ACTION_KEY, ready_id) is None
    [gave_way] = cloud.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
    assert gave_way["State"]["Name"] in ("shutting-down", "terminated")
    assert [m.lease_job for m in registry.members(ACTION_KEY)] == [head]
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=1, queued=0)


def test_a_full_pool_serves_nobody(cloud: Cloud, task_token: Token) -> None:
    action = warm(cloud, cap=1)
    assert registry.take(action, "running", None, CONFIG) is not None
    job, _arn = queued(cloud, task_token, action, "waiting", time.time())
    assert queue.serve(config.load(), action) == []
    assert [e.job_id for e in queue.entries(ACTION_KEY)] == [job]
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=1, queued=1)


def timed_out_token(cloud: Cloud) -> tuple[str, str]:
    """The token of a WaitForCapacity-like task that timed out (its execution went on without it): (token, ARN)."""
    sqs, sfn = cloud.client("sqs"), cloud.client("stepfunctions")
    queue_url = sqs.create_queue(QueueName="short-tokens")["QueueUrl"]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 1,
        "End": True,
    }
    machine = sfn.create_state_machine(
        name="times-out", definition=json.dumps({"StartAt": "Wait", "States": {"Wait": task}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]  # fmt: skip
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    message = wait_for(lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages"), what="the task token")[0]
    assert execution(cloud, arn)["status"] == "FAILED"  # States.Timeout: nobody waits on the token any more
    return json.loads(message["Body"])["token"], arn


def test_a_grant_whose_token_is_gone_is_undone(cloud: Cloud, task_token: Token) -> None:
    """Nobody waits on the token of a task that timed out, nor on that of an execution that was stopped (the
    pipeline stopped, or the reaper ended it): SendTaskSuccess answers TaskTimedOut and the grant goes back."""
    action = warm(cloud, cap=2)
    ready_id = ready_member(action)
    now = time.time()
    timed_out, timed_out_arn = timed_out_token(cloud)
    queue.enqueue(action, "timed-out", timed_out_arn, timed_out, deadline=now + 600, config=CONFIG, kind="warm",
                  now=now - 5)  # fmt: skip
    _stopped, stopped_arn = queued(cloud, task_token, action, "stopped", now - 3)
    cloud.client("stepfunctions").stop_execution(executionArn=stopped_arn)
    assert execution(cloud, stopped_arn)["status"] == "ABORTED"
    other, other_arn = queued(cloud, task_token, action, "other", now - 1)

    assert queue.serve(config.load(), action, now=now) == [other]

    # Both grants were undone: the ready member went back each time and served the next job.
    assert json.loads(execution(cloud, other_arn)["output"])["member_id"] == ready_id
    members = registry.members(ACTION_KEY)
    assert [(m.id, m.lease_job) for m in members] == [(ready_id, other)]  # no slot left reserved for the others
    assert registry.counter(ACTION_KEY) == registry.Counter(instances=1, queued=0)
    assert queue.entries(ACTION_KEY) == []  # neither served twice nor left behind


def test_expiry_fails_the_token_with_the_minutes_waited(cloud: Cloud, task_token: Token) -> None:
    action = warm(cloud, cap=1)
    assert registry.take(action, "running", None, CONFIG) is not None
    now = time.time()
    late, late_arn = queued(cloud, task_token, action, "late", now - 1500, deadline=now - 1)
    early, _early_arn = queued(cloud, task_token, action, "early", now - 60, deadline=now + 600)

    assert queue.expire(config.load(), action, now=now) == [late]

    failed = execution(cloud, late_arn)
    assert failed["status"] == "FAILED"
    history = cloud.client("stepfunctions").get_execution_history(executionArn=late_arn)["events"]
    [failure] = [e["taskFailedEventDetails"] for e in history if "taskFailedEventDetails" in e]
    assert failure["error"] == "CapacityTimeout"
    assert failure["cause"] == (
        "waited 25 minutes for capacity: action build allows 1 concurrent builds and all were busy; "
        "raise max_concurrent_builds or the build timeout"
    )
    assert [e.job_id for e in queue.entries(ACTION_KEY)] == [early]
    assert registry.counter(ACTION_KEY).queued == 1


def test_drop_removes_the_jobs_entry_once(cloud: Cloud) -> None:
    action = warm(cloud)
    queue.enqueue(action, "a", "arn", "token", deadline=100, config=CONFIG, kind="warm", now=1.0)
    assert queue.drop(ACTION_KEY, "a") is True
    assert queue.drop(ACTION_KEY, "a") is False
    assert registry.counter(ACTION_KEY).queued == 0


def test_a_grant_not_picked_up_is_answered_again(cloud: Cloud, task_token: Token) -> None:
    """The invocation that granted may have died before SendTaskSuccess: the grant's token is on the member."""
    action = warm(cloud, cap=1)
    now = time.time()
    token, arn = task_token("lost-answer")
    entry = queue.enqueue(action, "lost-answer", arn, token, deadline=now + 600, config=CONFIG, kind="warm", now=now)
    outcome, member = queue._grant(config.load(), action, entry)  # the transaction, without the answer
    assert outcome == queue.GRANTED and member is not None

    assert queue.resend_grants(config.load(), action, now=now + 10) == []  # not yet: the answer may be on its way
    assert queue.resend_grants(config.load(), action, now=now + 31) == ["lost-answer"]
    assert json.loads(execution(cloud, arn)["output"]) == {"member_id": member.id, "waited_seconds": 31}
