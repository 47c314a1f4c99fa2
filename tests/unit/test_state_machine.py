"""The state machine's definition (asl/build-job.asl.json) and what the report reads from it."""

import json
import re
from pathlib import Path
from typing import Any

ASL = Path(__file__).resolve().parents[2] / "asl" / "build-job.asl.json"
RELEASE, REPORT = "ReleaseInstance", "ReportResult"


def definition() -> dict[str, Any]:
    """The template with every Terraform placeholder given a value (quoted ARNs stay strings, numbers become 1)."""
    return json.loads(re.sub(r"\$\{\w+\}", "1", ASL.read_text()))


def build_steps(states: dict[str, Any]) -> list[str]:
    """The steps before the release, in the order of a successful run."""
    steps, name = [], definition()["StartAt"]
    while name != RELEASE:
        steps.append(name)
        name = states[name]["Next"]
    return steps


def test_every_build_step_records_its_own_name_when_it_fails() -> None:
    states = definition()["States"]
    steps = build_steps(states)
    assert steps == ["ValidateJob", "PublishDetailsLink", "AcquireInstance", "WaitForSsmOnline", "RunBuildCommand"]
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
        state = states[name]
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state["Next"]
    path.append(name)
    assert path == [*build_steps(states), RELEASE, REPORT, "DidBuildSucceed", "BuildSucceeded"]
    assert [name for name in path if states[name]["Type"] == "Pass"] == []


def test_only_the_recording_states_write_the_failed_step() -> None:
    states = definition()["States"]
    writers = {name for name, state in states.items() if "failed_step" in json.dumps(state)}
    assert writers == {f"{step}Failed" for step in build_steps(states)}
