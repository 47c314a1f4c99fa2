"""The state machine's definition (asl/build-job.asl.json) and what the report reads from it."""

import json
import re
from pathlib import Path
from typing import Any

ASL = Path(__file__).resolve().parents[2] / "asl" / "build-job.asl.json"
RELEASE, REPORT = "ReleaseInstance", "ReportResult"
WAIT, IS_ONLINE = "WaitForSsmOnline", "IsInstanceOnline"


def definition() -> dict[str, Any]:
    """The template with every Terraform placeholder given a value (quoted ARNs stay strings, numbers become 1)."""
    return json.loads(re.sub(r"\$\{\w+\}", "1", ASL.read_text()))


def success_next(state: dict[str, Any]) -> str:
    """The state after this one on a successful run (a Choice's first choice)."""
    return str(state["Choices"][0]["Next"] if state["Type"] == "Choice" else state["Next"])


def build_steps(states: dict[str, Any]) -> list[str]:
    """The Task steps before the release, in the order of a successful run."""
    steps, name = [], definition()["StartAt"]
    while name != RELEASE:
        if states[name]["Type"] == "Task":
            steps.append(name)
        name = success_next(states[name])
    return steps


def test_every_build_step_records_its_own_name_when_it_fails() -> None:
    states = definition()["States"]
    steps = build_steps(states)
    assert steps == ["AcquireInstance", WAIT, "RunBuildCommand"]
    for step in steps:
        [catch] = states[step]["Catch"]
        assert (catch["ErrorEquals"], catch["ResultPath"]) == (["States.ALL"], "$.error"), step
        recorder = states[catch["Next"]]
        assert recorder["Type"] == "Pass", step
        assert (recorder["Result"], recorder["ResultPath"], recorder["Next"]) == (step, "$.failed_step", RELEASE)


def test_a_successful_run_passes_through_no_recording_state() -> None:
    """Recording the failed step costs transitions on failure paths only (make bench counts a successful job's)."""
    states = definition()["States"]
    path, name = [], definition()["StartAt"]
    while "Next" in states[name] or states[name]["Type"] == "Choice":
        path.append(name)
        name = success_next(states[name])
    path.append(name)
    assert path == ["AcquireInstance", WAIT, IS_ONLINE, "RunBuildCommand", RELEASE, REPORT, "DidBuildSucceed",
                    "BuildSucceeded"]  # fmt: skip
    assert [name for name in path if states[name]["Type"] == "Pass"] == []


def test_only_the_recording_states_write_the_failed_step() -> None:
    states = definition()["States"]
    writers = {name for name, state in states.items() if "failed_step" in json.dumps(state)}
    assert writers == {f"{step}Failed" for step in build_steps(states)}


def test_acquire_outputs_the_state_it_validated_and_launched() -> None:
    """acquire takes the job and returns {job, build, instance}: its output is the state (no ResultPath); an invalid
    job is not retried."""
    acquire = definition()["States"]["AcquireInstance"]
    assert acquire["Parameters"] == {"job.$": "$.job", "execution_arn.$": "$$.Execution.Id"}
    assert "ResultPath" not in acquire and "OutputPath" not in acquire
    [never, *_] = acquire["Retry"]
    assert (
        set(never["ErrorEquals"]) == {"InvalidJobConfiguration", "InstanceLaunchFailed"} and never["MaxAttempts"] == 0
    )


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
