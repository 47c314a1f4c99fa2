"""The state machine's definition (asl/build-job.asl.json) and what the report reads from it."""

import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

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
        catch = states[step]["Catch"][-1]  # the last: a spot interruption's Catch comes before it (RESTARTING)
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
    # The end of the registration window and a lost instance end the build, a spot interruption restarts it: no
    # Retry waits on them.
    [interrupted, final, *others] = wait["Retry"]
    assert interrupted == {"ErrorEquals": ["SpotInterrupted"], "MaxAttempts": 0}
    assert set(final["ErrorEquals"]) == {"InstanceLost", "InstanceNotReady"} and final["MaxAttempts"] == 0
    assert all(retry["ErrorEquals"] == ["States.ALL"] for retry in others)


def test_release_gets_the_whole_state() -> None:
    """release terminates $.instance.instance_id when acquire returned it, else the instances tagged with $.job.id."""
    release = definition()["States"][RELEASE]
    assert release["Parameters"] == {"state.$": "$"}


# A spot interruption (SpotInterrupted) in these steps goes back to AcquireInstance: the restart loop.
RESTARTING = (WAIT, "RunBuildCommand")


def test_a_spot_interruption_goes_back_to_acquire_with_the_error_and_is_never_retried() -> None:
    """The interrupted instance is gone: a retry would meet it gone again. The error goes to $.interrupted (beside
    $.instance, the lost instance) and acquire launches a fresh one; every other error still ends the build."""
    states = definition()["States"]
    for step in RESTARTING:
        retry, catch = states[step]["Retry"], states[step]["Catch"]
        assert retry[0] == {"ErrorEquals": ["SpotInterrupted"], "MaxAttempts": 0}, step
        assert catch[0] == {"ErrorEquals": ["SpotInterrupted"], "ResultPath": "$.interrupted", "Next": ACQUIRE}, step
        assert [c["ErrorEquals"] for c in catch] == [["SpotInterrupted"], ["States.ALL"]], step
    others = {name for name, state in states.items() if "SpotInterrupted" in json.dumps(state.get("Catch", []))}
    assert others == set(RESTARTING)
    # A lost on-demand instance (the interruption function fails the task with InstanceLost) is not retried either.
    [never] = [r for r in states["RunBuildCommand"]["Retry"] if "InstanceLost" in r["ErrorEquals"]]
    assert never["MaxAttempts"] == 0


# The restart loop, executed: the module's definition in the local cloud's Step Functions (moto's ASL interpreter),
# its functions stand-ins that keep their contracts (DESIGN.md, "Lambda functions"). The job's configuration tells
# them which attempts EC2 interrupts: {"interrupt": {"<step>": [attempt, ...]}, "lost": [attempt, ...]} (acquire's
# stand-in hands it on in the build spec, which every step receives).
STAND_INS = """
import json
import boto3

class SpotInterrupted(Exception):
    pass

class InstanceLost(Exception):
    pass

class InstanceLaunchFailed(Exception):
    pass

BOUND = 3  # interruptions_before_on_demand (1) + 2: acquire's bound

def _plan(build, step):
    return build["plan"].get("interrupt", {}).get(step, [])

def _attempt(instance):
    return int(instance["instance_id"].rsplit("-", 1)[1])

def _cause(instance, step):
    return json.dumps({"instance_id": instance["instance_id"], "reason": "Server.SpotInstanceTermination",
                       "at": "2026-01-01T00:00:00+00:00", "step": step})

def acquire(event, context):
    state = event["state"]
    attempt = state.get("attempt") or {"interruptions": 0, "history": []}
    if state.get("interrupted"):
        step = json.loads(json.loads(state["interrupted"]["Cause"]).get("errorMessage", state["interrupted"]["Cause"]))
        attempt = {"interruptions": attempt["interruptions"] + 1,
                   "history": attempt["history"] + [{"instance_id": state["instance"]["instance_id"],
                                                     "step": step["step"]}]}
        if attempt["interruptions"] > BOUND:
            raise InstanceLaunchFailed(f"interrupted {attempt['interruptions']} times")
    number = attempt["interruptions"] + 1
    instance = {"instance_id": f"i-{number}", "lifecycle": "spot" if number <= 1 else "on-demand"}
    build = {"task_timeout_seconds": 600, "plan": state["job"]["configuration"]}
    output = {"job": state["job"], "build": build, "instance": instance, "queued": False}
    if attempt["interruptions"]:
        output["attempt"] = attempt
    return output

def wait_online(event, context):
    if _attempt(event["instance"]) in _plan(event["build"], "WaitForSsmOnline"):
        raise SpotInterrupted(_cause(event["instance"], "WaitForSsmOnline"))
    return {"online": True, "checks": 1}

def run_command(event, context):
    sfn, build, instance = boto3.client("stepfunctions"), event["build"], event["instance"]
    if _attempt(instance) in _plan(build, "RunBuildCommand"):
        sfn.send_task_failure(taskToken=event["task_token"], error="SpotInterrupted",
                              cause=_cause(instance, "RunBuildCommand"))
    elif _attempt(instance) in build["plan"].get("lost", []):
        sfn.send_task_failure(taskToken=event["task_token"], error="InstanceLost", cause="terminated during the build")
    else:
        output = {"status": "Success", "response_code": 0, "instance_id": instance["instance_id"]}
        sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(output))
    return {"command_id": "c-1"}

def enqueue(event, context):
    raise AssertionError("never queued")

def release(event, context):
    return {"terminated": [event["state"]["instance"]["instance_id"]]}

def report(event, context):
    state = event["state"]
    return {"succeeded": not state.get("error"), "message": json.dumps(state.get("attempt"))}
"""
FUNCTIONS = ("acquire", "wait_online", "run_command", "enqueue", "release", "report")


@pytest.fixture(scope="module")
def executed() -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """run(configuration): execute the module's state machine for a job with that configuration; its history."""
    from emulator import server

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALCLOUD_TIME_SCALE", "0.05")
        cloud = server.start()
        try:
            yield _runner(cloud)
        finally:
            cloud.stop()


def _runner(cloud: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)
    lam, sfn = (session.client(name, endpoint_url=cloud.endpoint) for name in ("lambda", "stepfunctions"))
    role = session.client("iam", endpoint_url=cloud.endpoint).create_role(
        RoleName="job", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("stand_ins.py", STAND_INS)
    arns = {
        f"{name}_function_arn": lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler=f"stand_ins.{name}",
            Code={"ZipFile": archive.getvalue()}, Timeout=30,
        )["FunctionArn"]
        for name in FUNCTIONS
    }  # fmt: skip
    values = {**arns, "partition": "aws", "capacity_retry_interval_seconds": "1", "capacity_retry_max_attempts": "1"}
    rendered = re.sub(r"\$\{(\w+)\}", lambda match: values[match.group(1)], ASL.read_text())
    machine = sfn.create_state_machine(name="job", definition=rendered, roleArn=role)["stateMachineArn"]

    def run(configuration: dict[str, Any]) -> dict[str, Any]:
        job = {"id": str(uuid.uuid4()), "configuration": configuration}
        arn = sfn.start_execution(stateMachineArn=machine, name=job["id"], input=json.dumps({"job": job}))[
            "executionArn"
        ]
        deadline = time.monotonic() + 60
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution never ended"
            time.sleep(0.05)
        events = sfn.get_paginator("get_execution_history").paginate(executionArn=arn).build_full_result()["events"]
        return {"status": described["status"], "events": events}

    return run


def entered(history: dict[str, Any]) -> list[str]:
    """The states the execution entered, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]


def acquire_inputs(history: dict[str, Any]) -> list[dict[str, Any]]:
    """The state AcquireInstance received each time ({"state.$": "$"})."""
    return [
        json.loads(e["stateEnteredEventDetails"]["input"])
        for e in history["events"]
        if e.get("stateEnteredEventDetails", {}).get("name") == ACQUIRE
    ]


# One attempt: the healthy path's states from AcquireInstance to RunBuildCommand. An interrupted attempt is cut short
# where the interruption struck and costs no state of its own.
ATTEMPT = [ACQUIRE, HAS_CAPACITY, WAIT, IS_ONLINE, "RunBuildCommand"]
END = [RELEASE, REPORT, "DidBuildSucceed", "BuildSucceeded"]


def test_an_uninterrupted_run_takes_the_happy_path(executed: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    history = executed({})
    assert history["status"] == "SUCCEEDED"
    assert entered(history) == happy_path()


def test_a_build_interrupted_restarts_in_the_same_execution_at_the_cost_of_one_attempt(
    executed: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Interrupted during the SSM wait on attempt 1 and during the build on attempt 2, it finishes on attempt 3:
    acquire saw each interruption with the lost instance, and each attempt cost the states of the healthy path up to
    the one interrupted, nothing more."""
    history = executed({"interrupt": {WAIT: [1], "RunBuildCommand": [2]}})

    assert history["status"] == "SUCCEEDED"
    assert entered(history) == ATTEMPT[:3] + ATTEMPT + ATTEMPT + END
    first, second, third = acquire_inputs(history)
    assert "interrupted" not in first and "instance" not in first
    assert second["interrupted"]["Error"] == "SpotInterrupted" and second["instance"]["instance_id"] == "i-1"
    assert json.loads(json.loads(second["interrupted"]["Cause"])["errorMessage"])["step"] == WAIT
    assert third["interrupted"]["Error"] == "SpotInterrupted" and third["instance"]["instance_id"] == "i-2"
    assert json.loads(third["interrupted"]["Cause"])["step"] == "RunBuildCommand"  # SendTaskFailure's cause as sent
    assert third["attempt"]["interruptions"] == 1  # what acquire output after the first interruption carries on
    # acquire's output is the state: the interruption is not carried on, its count is.
    [released] = [json.loads(e["stateEnteredEventDetails"]["input"]) for e in history["events"]
                  if e.get("stateEnteredEventDetails", {}).get("name") == RELEASE]  # fmt: skip
    assert "interrupted" not in released and released["instance"]["instance_id"] == "i-3"
    assert released["attempt"] == {
        "interruptions": 2,
        "history": [{"instance_id": "i-1", "step": WAIT}, {"instance_id": "i-2", "step": "RunBuildCommand"}],
    }
    # Never retried: one invocation per attempt of the interrupted step.
    scheduled = [e for e in history["events"] if e["type"] in ("LambdaFunctionScheduled", "TaskScheduled")]
    assert len(scheduled) == len([s for s in entered(history) if s in (ACQUIRE, WAIT, "RunBuildCommand", *END[:2])])


def test_past_acquires_bound_the_job_fails_and_still_releases_and_reports(
    executed: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    history = executed({"interrupt": {"RunBuildCommand": [1, 2, 3, 4]}})

    assert history["status"] == "FAILED"
    assert entered(history) == ATTEMPT * 4 + [
        ACQUIRE, "AcquireInstanceFailed", RELEASE, REPORT, "DidBuildSucceed", "BuildFailed"
    ]  # fmt: skip
    failed = acquire_inputs(history)[-1]
    assert failed["instance"]["instance_id"] == "i-4"  # release gets the last instance (and the job's member)


def test_an_on_demand_instance_lost_during_a_restarted_build_fails_it_without_a_retry(
    executed: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    history = executed({"interrupt": {"RunBuildCommand": [1]}, "lost": [2]})

    assert history["status"] == "FAILED"
    assert entered(history) == ATTEMPT + ATTEMPT + [
        "RunBuildCommandFailed", RELEASE, REPORT, "DidBuildSucceed", "BuildFailed"
    ]  # fmt: skip
