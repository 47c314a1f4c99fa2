"""The state machine's definition (asl/build-job.asl.json) and what the report reads from it."""

import json
import re
from pathlib import Path
from typing import Any

ASL = Path(__file__).resolve().parents[2] / "asl" / "build-job.asl.json"
RELEASE, REPORT = "ReleaseInstance", "ReportResult"
WAIT, IS_ONLINE = "WaitForSsmOnline", "IsInstanceOnline"
ACQUIRE, HAS_CAPACITY, WAIT_FOR_CAPACITY = "AcquireInstance", "HasCapacity", "WaitForCapacity"
# The branch a job takes at each Choice when nothing stands in its way: capacity at once, the instance Online.
HAPPY_BRANCH = {HAS_CAPACITY: WAIT, IS_ONLINE: "RunBuildCommand", "DidBuildSucceed": "BuildSucceeded"}


def definition() -> dict[str, Any]:
    """The template with every Terraform placeholder given a value (quoted ARNs stay strings, numbers become 1)."""
    return json.loads(re.sub(r"\$\{\w+\}", "1", ASL.read_text()))


def success_next(name: str, state: dict[str, Any]) -> str:
    """The state after this one on a successful run that never waits (HAPPY_BRANCH at a Choice)."""
    if state["Type"] != "Choice":
        return str(state["Next"])
    branches = [choice["Next"] for choice in state["Choices"]] + [state["Default"]]
    assert HAPPY_BRANCH[name] in branches, name
    return HAPPY_BRANCH[name]


def happy_path() -> list[str]:
    """Every state a successful job that found capacity at once enters, in order (make bench counts them)."""
    states = definition()["States"]
    path, name = [], definition()["StartAt"]
    while "Next" in states[name] or states[name]["Type"] == "Choice":
        path.append(name)
        name = success_next(name, states[name])
    return [*path, name]


def build_steps(states: dict[str, Any]) -> list[str]:
    """The Task steps that can fail before the release: every Task but the release and the report."""
    return [name for name, state in states.items() if state["Type"] == "Task" and name not in (RELEASE, REPORT)]


def test_every_build_step_records_its_own_name_when_it_fails() -> None:
    states = definition()["States"]
    steps = build_steps(states)
    assert sorted(steps) == sorted([ACQUIRE, WAIT_FOR_CAPACITY, WAIT, "RunBuildCommand"])
    for step in steps:
        [catch] = states[step]["Catch"]
        assert (catch["ErrorEquals"], catch["ResultPath"]) == (["States.ALL"], "$.error"), step
        recorder = states[catch["Next"]]
        assert recorder["Type"] == "Pass", step
        assert (recorder["Result"], recorder["ResultPath"], recorder["Next"]) == (step, "$.failed_step", RELEASE)


def test_a_successful_run_passes_through_no_recording_state() -> None:
    """Recording the failed step costs transitions on failure paths only (make bench counts a successful job's):
    nine states, the capacity check the one more than before the queue."""
    states = definition()["States"]
    path = happy_path()
    assert path == [ACQUIRE, HAS_CAPACITY, WAIT, IS_ONLINE, "RunBuildCommand", RELEASE, REPORT, "DidBuildSucceed",
                    "BuildSucceeded"]  # fmt: skip
    assert len(path) == 9
    assert [name for name in path if states[name]["Type"] == "Pass"] == []


def test_a_job_without_capacity_waits_for_a_grant_then_acquires_again() -> None:
    """HasCapacity sends a queued job to WaitForCapacity (a task token, no polling); its grant goes to $.grant and the
    job goes back to AcquireInstance, which takes the granted instance. Each wait costs three transitions."""
    states = definition()["States"]
    choice, wait = states[HAS_CAPACITY], states[WAIT_FOR_CAPACITY]
    assert states[ACQUIRE]["Next"] == HAS_CAPACITY
    assert choice["Type"] == "Choice" and choice["Default"] == WAIT
    [queued] = choice["Choices"]
    assert queued["Next"] == WAIT_FOR_CAPACITY
    # queued must be present and true: an output without it (acquire before the queue) goes on to the wait for SSM.
    assert queued["And"] == [
        {"Variable": "$.queued", "IsPresent": True},
        {"Variable": "$.queued", "BooleanEquals": True},
    ]
    assert wait["Resource"] == "arn:1:states:::lambda:invoke.waitForTaskToken"
    # enqueue's event (lambda_src/ec2_action/handlers/enqueue.py): it stores the token with the queue entry.
    assert wait["Parameters"]["Payload"] == {
        "task_token.$": "$$.Task.Token",
        "job.$": "$.job",
        "build.$": "$.build",
        "execution_arn.$": "$$.Execution.Id",
    }
    assert (wait["TimeoutSecondsPath"], wait["ResultPath"], wait["Next"]) == (
        "$.build.task_timeout_seconds",
        "$.grant",
        ACQUIRE,
    )


def test_a_wait_that_runs_out_of_time_is_never_retried() -> None:
    """The job's timeout (States.Timeout) and the keeper's CapacityTimeout end the job: a retry would queue it again
    behind everyone. A second acquire with no time left raises CapacityTimeout too: not retried either. Nor is
    StackDestroyed (terraform destroy's drain): a retry would queue the job in a registry nobody serves any more."""
    states = definition()["States"]
    [never, *others] = states[WAIT_FOR_CAPACITY]["Retry"]
    assert set(never["ErrorEquals"]) == {"States.Timeout", "CapacityTimeout", "StackDestroyed"}
    assert never["MaxAttempts"] == 0
    assert all(retry["ErrorEquals"] == ["States.ALL"] for retry in others)
    [acquire_never, *_] = states[ACQUIRE]["Retry"]
    assert "CapacityTimeout" in acquire_never["ErrorEquals"] and acquire_never["MaxAttempts"] == 0


def test_only_the_recording_states_write_the_failed_step() -> None:
    states = definition()["States"]
    writers = {name for name, state in states.items() if "failed_step" in json.dumps(state)}
    assert writers == {f"{step}Failed" for step in build_steps(states)}


def test_acquire_outputs_the_state_it_validated_and_launched() -> None:
    """acquire takes the whole state (the job; after a wait also the build and its grant) and returns {job, build,
    instance, queued, grant?}: its output is the state (no ResultPath); an invalid job, a refused launch and a job
    out of time are not retried."""
    acquire = definition()["States"][ACQUIRE]
    assert acquire["Parameters"] == {"state.$": "$", "execution_arn.$": "$$.Execution.Id"}
    assert "ResultPath" not in acquire and "OutputPath" not in acquire
    [never, *_] = acquire["Retry"]
    assert set(never["ErrorEquals"]) == {"InvalidJobConfiguration", "InstanceLaunchFailed", "CapacityTimeout"}
    assert never["MaxAttempts"] == 0


def test_a_throttled_launch_is_retried_with_backoff_for_minutes() -> None:
    """EC2's request buckets refill in seconds to minutes: LaunchThrottled is retried 6 times, 5 s doubling (about 5
    minutes in all), not failed like a refused launch."""
    [throttled] = [r for r in definition()["States"][ACQUIRE]["Retry"] if "LaunchThrottled" in r["ErrorEquals"]]
    assert throttled["ErrorEquals"] == ["LaunchThrottled"]
    waits = [throttled["IntervalSeconds"] * throttled["BackoffRate"] ** n for n in range(throttled["MaxAttempts"])]
    assert 240 <= sum(waits) <= 600


def test_the_wait_for_ssm_goes_on_in_another_invocation_until_the_instance_is_online() -> None:
    states = definition()["States"]
    wait, choice = states[WAIT], states[IS_ONLINE]
    # wait_online's event (lambda_src/ec2_action/handlers/wait_online.py); its output goes to $.ssm.
    assert wait["Parameters"] == {"job_id.$": "$.job.id", "build.$": "$.build", "instance.$": "$.instance"}
    assert (wait["ResultPath"], wait["Next"]) == ("$.ssm", IS_ONLINE)
    # Not online yet (the invocation's time ran short): wait again; online: run the build.
    assert choice["Type"] == "Choice" and choice["Default"] == WAIT
    assert choice["Choices"] == [{"Variable": "$.ssm.online", "BooleanEquals": True, "Next": "RunBuildCommand"}]
    # The end of the registration window and a lost instance end the build: no Retry waits on them.
    [final, *others] = wait["Retry"]
    assert set(final["ErrorEquals"]) == {"InstanceLost", "InstanceNotReady"} and final["MaxAttempts"] == 0
    assert all(retry["ErrorEquals"] == ["States.ALL"] for retry in others)


def test_release_gets_the_whole_state() -> None:
    """release terminates $.instance.instance_id when acquire returned it, else the instances tagged with $.job.id."""
    release = definition()["States"][RELEASE]
    assert release["Parameters"] == {"state.$": "$"}
