"""EC2's request throttling in the local cloud: AWS's token bucket sizes, refills in AWS time, RequestLimitExceeded
as EC2 answers it, botocore's standard retries getting through, and the counts the bench reports."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator import faults, metrics, server
from emulator.ec2 import throttling

SCALE = 0.05  # an AWS second lasts 0.05 s here
LINUX_AMI = "ami-1e749f67"  # one of moto's built-in AMIs
UNKNOWN = "i-0123456789abcdef0"  # requests about an unknown instance still spend their tokens


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALCLOUD_TIME_SCALE", str(SCALE))
        cloud = server.start()
        yield cloud
        cloud.stop()


class FrozenClock:
    """The buckets' clock, moved by hand: a refill happens only when a test says time passed."""

    def __init__(self) -> None:
        self.real = 1000.0

    def __call__(self) -> float:
        return self.real

    def advance(self, aws_seconds: float) -> None:
        self.real += aws_seconds * SCALE


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(throttling, "now", frozen)
    return frozen


@pytest.fixture(autouse=True)
def fresh_buckets(cloud: server.LocalCloud) -> Iterator[None]:
    """Each test starts with full buckets and throttling as AWS does it; nothing stays on after it."""
    throttling.reset()
    throttling.enable(True)
    yield
    throttling.enable(None)
    throttling.reset()
    faults.clear()


def _ec2(cloud: server.LocalCloud, attempts: int = 1, observer: bool = False) -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)
    config = Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        user_agent_appid=metrics.OBSERVER_APP_ID if observer else None,
        max_pool_connections=20,
    )
    return session.client("ec2", endpoint_url=cloud.endpoint, config=config)


@pytest.fixture
def ec2(cloud: server.LocalCloud) -> Any:
    return _ec2(cloud)


def _outcome(call: Callable[[], Any]) -> str:
    """'ok', or the error code of the answer."""
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def _throttled(call: Callable[[], Any]) -> bool:
    return _outcome(call) == "RequestLimitExceeded"


def _run(ec2: Any, count: int = 1) -> Callable[[], Any]:
    return lambda: ec2.run_instances(ImageId=LINUX_AMI, MinCount=count, MaxCount=count)


def _fleet(ec2: Any, count: int = 1) -> Callable[[], Any]:
    """An instant fleet whose launch template does not exist: answered with an error per override, no launch."""
    return lambda: ec2.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[{"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0123456789abcdef0",
                                                                "Version": "1"}}],
        TargetCapacitySpecification={"TotalTargetCapacity": count, "DefaultTargetCapacityType": "on-demand"},
    )  # fmt: skip


CALLS: dict[str, Callable[[Any], Callable[[], Any]]] = {
    "RunInstances": _run,
    "CreateFleet": _fleet,
    "StartInstances": lambda ec2: lambda: ec2.start_instances(InstanceIds=[UNKNOWN]),
    "StopInstances": lambda ec2: lambda: ec2.stop_instances(InstanceIds=[UNKNOWN]),
    "TerminateInstances": lambda ec2: lambda: ec2.terminate_instances(InstanceIds=[UNKNOWN]),
    "DescribeInstances (filtered)": lambda ec2: (
        lambda: ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    ),
    "DescribeInstances (unfiltered, unpaginated)": lambda ec2: ec2.describe_instances,
}
# The request token buckets of "Request throttling for the Amazon EC2 API": (maximum capacity, refill per second).
AWS_BUCKETS = {
    "RunInstances": (5, 2),
    "CreateFleet": (50, 5),  # a mutating action
    "StartInstances": (5, 2),
    "StopInstances": (50, 5),
    "TerminateInstances": (100, 5),
    "DescribeInstances (filtered)": (100, 20),
    "DescribeInstances (unfiltered, unpaginated)": (50, 10),
}


@pytest.mark.parametrize("action", AWS_BUCKETS)
def test_a_burst_beyond_the_request_bucket_is_refused_until_it_refills_in_aws_time(ec2, clock, action):
    capacity, refill = AWS_BUCKETS[action]
    call = CALLS[action](ec2)

    burst = [_throttled(call) for _ in range(capacity)]
    refused = _throttled(call)
    clock.advance(1 / refill)  # one token's worth of AWS time
    after_one_token = [_throttled(call), _throttled(call)]
    clock.advance(capacity / refill)  # time to fill the bucket, and more: it holds no more than its capacity
    refilled = [_throttled(call) for _ in range(capacity)]

    assert burst == [False] * capacity
    assert refused
    assert after_one_token == [False, True]
    assert refilled == [False] * capacity
    assert _throttled(call)


def test_request_limit_exceeded_is_ec2s_503_and_is_counted_per_operation(ec2, clock):
    before = metrics.throttled_requests()["ec2:RunInstances"]
    for _ in range(5):
        _run(ec2)()

    with pytest.raises(ClientError) as refused:
        _run(ec2)()

    response = refused.value.response
    assert response["Error"] == {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert metrics.throttled_requests()["ec2:RunInstances"] == before + 1


def test_the_unfiltered_describe_bucket_is_apart_from_the_filtered_and_paginated_one(ec2, clock):
    unfiltered = [_throttled(ec2.describe_instances) for _ in range(51)]
    paginated = _throttled(lambda: ec2.describe_instances(MaxResults=5))
    filtered = _throttled(CALLS["DescribeInstances (filtered)"](ec2))

    assert unfiltered == [False] * 50 + [True]
    assert not paginated and not filtered


def test_the_resource_bucket_counts_instances_and_refuses_a_request_the_request_bucket_allows(ec2, clock):
    thousand = [f"i-{n:017x}" for n in range(1000)]

    assert _outcome(lambda: ec2.terminate_instances(InstanceIds=thousand)) == "InvalidInstanceID.NotFound"
    refused = _outcome(CALLS["TerminateInstances"](ec2))
    clock.advance(1 / 20)  # TerminateInstances' resource bucket refills 20 instances a second
    allowed = _outcome(CALLS["TerminateInstances"](ec2))

    assert refused == "RequestLimitExceeded"
    assert allowed == "InvalidInstanceID.NotFound"


def test_a_fleets_instances_draw_on_the_runinstances_resource_bucket(ec2, clock):
    assert _outcome(_fleet(ec2, count=1000)) == "ok"  # 1000 instances asked for: every resource token spent
    refused = _outcome(_run(ec2))
    clock.advance(1 / 2)  # RunInstances' resource bucket refills 2 instances a second
    allowed = _outcome(_run(ec2))

    assert refused == "RequestLimitExceeded"
    assert allowed == "ok"


def test_the_tests_observing_clients_are_never_throttled(cloud, clock):
    observer = _ec2(cloud, observer=True)

    assert [_throttled(_run(observer)) for _ in range(8)] == [False] * 8
    assert not _throttled(_run(_ec2(cloud))), "the observer spent none of the system's tokens"


def test_a_fault_shrinks_one_bucket_even_with_throttling_off(ec2, clock):
    throttling.enable(False)
    faults.throttle("DescribeInstances", bucket=2, refill_per_second=0.5)

    shrunk = [_throttled(ec2.describe_instances) for _ in range(3)]
    clock.advance(2)
    refilled = _throttled(ec2.describe_instances)
    others = [_throttled(_run(ec2)) for _ in range(8)]
    faults.clear()
    cleared = [_throttled(ec2.describe_instances) for _ in range(8)]

    assert shrunk == [False, False, True]
    assert not refilled
    assert others == [False] * 8, "throttling is off for the actions the fault leaves alone"
    assert cleared == [False] * 8


def test_botocore_standard_retries_get_a_throttled_burst_through(cloud):
    """Real time: a bucket of 2 refilled with 2 tokens per real second, eight launches at once from four threads."""
    faults.throttle("RunInstances", bucket=2, refill_per_second=2 * SCALE)
    client = _ec2(cloud, attempts=10)
    before = metrics.throttled_requests()["ec2:RunInstances"]
    answers: list[dict[str, Any]] = []

    def launch_two() -> None:
        for _ in range(2):
            answers.append(_run(client)())

    threads = [threading.Thread(target=launch_two) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 8, "every launch got through"
    assert sum(answer["ResponseMetadata"]["RetryAttempts"] for answer in answers) > 0
    assert metrics.throttled_requests()["ec2:RunInstances"] - before > 0
