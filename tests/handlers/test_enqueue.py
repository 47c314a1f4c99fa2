"""enqueue (WaitForCapacity): the job's entry with its task token, then the queue served at once."""

from __future__ import annotations

import json
import time
from typing import Any

from conftest import Cloud, wait_for
from pool_fixtures import acquired, configure_pool, pool_job, released

from ec2_action import queue, registry
from ec2_action.handlers import enqueue


def enqueued(cloud: Cloud, task_token: Any, state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """WaitForCapacity's Payload {task_token, job, build, execution_arn}: (the output, the waiting execution)."""
    token, arn = task_token(state["job"]["id"])
    event = {"task_token": token, "job": state["job"], "build": state["build"], "execution_arn": arn}
    return enqueue.handler(event, cloud.context), arn


def status(cloud: Cloud, arn: str) -> str:
    return str(cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"])


def test_a_job_at_the_cap_is_queued_with_its_token_and_waits(cloud: Cloud, task_token: Any) -> None:
    configure_pool(cloud, "warm", cap=1)
    acquired(cloud, pool_job())
    waiting = acquired(cloud, pool_job())
    before = time.time()

    output, arn = enqueued(cloud, task_token, waiting)

    [entry] = queue.entries("build")
    assert output == {"queued": entry.id, "granted": []}
    assert (entry.job_id, entry.execution_arn, entry.kind) == (waiting["job"]["id"], arn, "warm")
    # Failed by the queue two keeper passes before Step Functions' own timeout, with the queue's message.
    timeout = waiting["build"]["task_timeout_seconds"]
    assert before + timeout - 121 <= entry.deadline <= time.time() + timeout - 119
    assert registry.counter("build") == registry.Counter(instances=1, queued=1)
    time.sleep(0.5)
    assert status(cloud, arn) == "RUNNING"


def test_capacity_freed_since_acquire_is_granted_at_once(cloud: Cloud, task_token: Any) -> None:
    configure_pool(cloud, "warm", cap=1)
    running = acquired(cloud, pool_job())
    waiting = acquired(cloud, pool_job())
    released(cloud, running)  # between the waiting job's acquire and its WaitForCapacity

    output, arn = enqueued(cloud, task_token, waiting)

    assert output["granted"] == [waiting["job"]["id"]]
    grant = json.loads(wait_for(lambda: status(cloud, arn) != "RUNNING" and
                                cloud.client("stepfunctions").describe_execution(executionArn=arn)["output"],
                                what="the grant"))  # fmt: skip
    assert grant["member_id"] == running["instance"]["member_id"]
    assert queue.entries("build") == [] and registry.counter("build") == registry.Counter(instances=1, queued=0)


def test_a_job_queues_behind_earlier_ones_even_when_capacity_frees(cloud: Cloud, task_token: Any) -> None:
    configure_pool(cloud, "warm", cap=1)
    running = acquired(cloud, pool_job())
    first = acquired(cloud, pool_job())
    _, first_arn = enqueued(cloud, task_token, first)
    second = acquired(cloud, pool_job())
    assert second["queued"] is True

    released(cloud, running)  # serves the head: the first job
    output, second_arn = enqueued(cloud, task_token, second)

    assert output["granted"] == []  # the member went to the first job, which queued earlier
    wait_for(lambda: status(cloud, first_arn) == "SUCCEEDED", what="the first job's grant")
    assert status(cloud, second_arn) == "RUNNING"
    assert [entry.job_id for entry in queue.entries("build")] == [second["job"]["id"]]
