"""Spot rows of the fault matrix (issue 11): a spot build interrupted and restarted, spot or all capacity gone, and
what the module must do about it. Hooks and proofs for tests/e2e/spot_rows.py, run by harness.matrix like any row.

A row's build records each of its runs in a host file (the local cloud's agent runs commands on this machine) and
waits at a gate before it ends, so a row interrupts it while it runs and counts how often it ran: a restart runs
the build again from the start; an interruption that comes after the command's end must not.

Besides what each row says, every spot row checks the matrix's invariants (one execution per job, a terminal
answer naming the cause, no instance left) and that the job got exactly one final answer.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from emulator import codepipeline, faults
from harness.matrix import Hook, Proof, Result, RowRun, one_final_answer

RUN_TIMEOUT = 90.0  # seconds a row waits for a build run or a launch it expects
STEP_SECONDS = 0.2
ON_DEMAND, SPOT = "on-demand", "spot"
# The success summary's words about a restarted build (messages.py): "interrupted 1 time, finished on i-... (spot)".
RESTART_SUMMARY = re.compile(r"interrupted (\d+) times?, finished on (i-[0-9a-f]+) \((on-demand|spot)\)")


class RowStuck(AssertionError):
    """What a row waited for never happened."""


def wait_for(condition: Callable[[], Any], failure: str, timeout: float = RUN_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RowStuck(failure)
        time.sleep(STEP_SECONDS)


# ---------------------------------------------------------------------------------------------------------------------
# The row's job, read back from the local cloud
# ---------------------------------------------------------------------------------------------------------------------


def job_id(run: RowRun) -> str:
    """The row's first CodePipeline job (its state machine execution's name); "" until the action started."""
    for job in codepipeline.jobs(region=run.deployment.cloud.region):
        if job.run.pipeline_name == run.pipeline:
            return job.id
    return ""


def history(run: RowRun) -> list[dict[str, Any]]:
    """The job's execution history, oldest first; [] until it started."""
    name = job_id(run)
    if not name:
        return []
    arn = run.deployment.outputs["state_machine_arn"].replace(":stateMachine:", ":execution:", 1) + f":{name}"
    sfn = run.deployment.client("stepfunctions")
    try:
        return list(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return []


def acquisitions(run: RowRun) -> list[dict[str, Any]]:
    """The instances AcquireInstance handed the job (its output's `instance`), in order: one per attempt."""
    found = []
    for event in history(run):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "AcquireInstance" and details.get("output"):
            instance = json.loads(details["output"]).get("instance")
            if instance:
                found.append(instance)
    return found


def step_errors(run: RowRun) -> list[str]:
    """The errors the job's steps failed with (retried or caught), in order."""
    errors = []
    for event in history(run):
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and details.get("error"):
                errors.append(str(details["error"]))
    return errors


def lifecycle(run: RowRun, instance_id: str) -> str:
    """How EC2 says the instance was bought: "spot" (InstanceLifecycle) or "on-demand" (no InstanceLifecycle)."""
    ec2 = run.deployment.client("ec2")
    [instance] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
    return str(instance.get("InstanceLifecycle") or ON_DEMAND)


def action_config(run: RowRun) -> dict[str, Any]:
    """The stack's EC2_ACTION_CONFIG, as its acquire function reads it."""
    name = run.function_name("acquire")
    environment = run.deployment.client("lambda").get_function_configuration(FunctionName=name)["Environment"]
    return dict(json.loads(environment["Variables"]["EC2_ACTION_CONFIG"]))


# ---------------------------------------------------------------------------------------------------------------------
# The build: counted runs behind gates
# ---------------------------------------------------------------------------------------------------------------------


def runs_file(run: RowRun) -> str:
    return str(run.scratch / "runs")


def gate(run: RowRun, number: int) -> str:
    return str(run.scratch / f"gate-{number}")


def counted_build(finishes_at: int) -> Callable[[RowRun], Mapping[str, str]]:
    """The row's Command: each run appends a line to the host's runs file; runs before number `finishes_at` wait
    (at most two minutes) for their gate, which only the row opens, so they run until the row interrupts them."""

    def configure(run: RowRun) -> Mapping[str, str]:
        runs, gates = runs_file(run), str(run.scratch / "gate-")
        command = (
            f"echo started >> {runs}\n"
            f"n=$(wc -l < {runs} | tr -d ' ')\n"
            f'if [ "$n" -lt {finishes_at} ]; then\n'
            f'  for i in $(seq 1200); do [ -e {gates}"$n" ] && break; sleep 0.1; done\n'
            "fi\n"
            'echo "built on run $n"'
        )
        return {"Command": command}

    return configure


def runs_started(run: RowRun) -> int:
    try:
        with open(runs_file(run)) as runs:
            return sum(1 for _ in runs)
    except FileNotFoundError:
        return 0


def open_gate(run: RowRun, number: int) -> None:
    with open(gate(run, number), "w"):
        pass


def building(run: RowRun, number: int) -> dict[str, Any]:
    """Wait until the build's run `number` runs; the instance it runs on (acquire's latest: no new one is acquired
    before this one is interrupted)."""
    wait_for(lambda: runs_started(run) >= number, f"the build's run {number} never started")
    return acquisitions(run)[-1]


# ---------------------------------------------------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------------------------------------------------


def interrupt_builds(times: int, warning: bool = True) -> Hook:
    """Interrupt the spot instance of each of the build's first `times` runs while it runs (the warning, then the
    termination two AWS minutes later; `warning` False: the warning is lost, only the termination comes)."""

    def during(run: RowRun) -> None:
        for number in range(1, times + 1):
            instance = building(run, number)
            faults.interrupt_spot(instance["instance_id"], warning=warning)

    return during


def never_registers_once(run: RowRun) -> None:
    """The job's first instance never comes Online in Systems Manager: its WaitForSsmOnline step waits."""
    faults.never_register(count=1)


def interrupt_while_registering(run: RowRun) -> None:
    """Interrupt the job's first instance while WaitForSsmOnline waits for it (it never registers)."""
    wait_for(lambda: any(_entered(e, "WaitForSsmOnline") for e in history(run)), "WaitForSsmOnline never started")
    faults.interrupt_spot(acquisitions(run)[0]["instance_id"])


def _entered(event: Mapping[str, Any], state: str) -> bool:
    return (event.get("stateEnteredEventDetails") or {}).get("name") == state


def _exited(event: Mapping[str, Any], state: str) -> bool:
    return (event.get("stateExitedEventDetails") or {}).get("name") == state


def command_ended(run: RowRun, instance_id: str) -> str:
    """The status of the job's build command on the instance once it ended ("" while it runs)."""
    ssm, name = run.deployment.client("ssm"), job_id(run)
    commands = ssm.list_commands(InstanceId=instance_id)["Commands"]
    ended = [c["Status"] for c in commands if c.get("Comment") == name and c["Status"] not in ("Pending", "InProgress")]
    return ended[0] if ended else ""


def interrupt_after_success(run: RowRun) -> None:
    """The build's command succeeds and its status event is sent, but nothing reads it (the command_event function
    crashes, the row's inject; the sweep's schedule held meanwhile); then the instance is interrupted. The
    interruption handler must deliver the result that stands, not restart the build."""
    events = run.deployment.client("events")
    sweep = f"{run.deployment.outputs['name_prefix']}-job-sweep"
    events.disable_rule(Name=sweep)
    try:
        instance = building(run, 1)
        open_gate(run, 1)
        status = wait_for(lambda: command_ended(run, instance["instance_id"]), "the build command never ended")
        if status != "Success":
            run.observed.append(f"the build command ended {status}, expected Success")
        faults.interrupt_spot(instance["instance_id"])
        wait_for(
            lambda: any(_exited(e, "RunBuildCommand") for e in history(run)) or "SpotInterrupted" in step_errors(run),
            "the interruption after the command's end was never handled (RunBuildCommand still waits)",
        )
    finally:
        events.enable_rule(Name=sweep)


def no_capacity(lifecycle: str | None = None) -> Hook:
    """No pool of `lifecycle` ("spot", "on-demand"; None: any) has capacity for another instance."""
    return lambda run: faults.fleet_capacity(lifecycle=lifecycle, available=0)


def capacity_after_one_failed_acquire(run: RowRun) -> None:
    """Capacity comes back once an acquire attempt has failed with NoCapacity (its Retry then launches)."""
    wait_for(lambda: "NoCapacity" in step_errors(run), "no acquire attempt failed with NoCapacity")
    faults.clear()


# ---------------------------------------------------------------------------------------------------------------------
# Proofs
# ---------------------------------------------------------------------------------------------------------------------


def build_ran(times: int) -> Proof:
    def proof(run: RowRun, result: Result) -> list[str]:
        ran = runs_started(run)
        return [] if ran == times else [f"the build ran {ran} time(s), expected {times}"]

    return proof


def restarted(interruptions: int, finished_on: str) -> Proof:
    """The job was handed one instance per attempt, each interrupted one a spot instance; it finished on a
    `finished_on` instance, and its summary says "interrupted N time(s), finished on <that instance> (<option>)"
    ("1 time", "2 times")."""

    def proof(run: RowRun, result: Result) -> list[str]:
        problems = []
        handed = acquisitions(run)
        if len(handed) != interruptions + 1:
            problems.append(f"the job was handed {len(handed)} instance(s), expected {interruptions + 1}")
        bought = [lifecycle(run, instance["instance_id"]) for instance in handed]
        if any(option != SPOT for option in bought[:-1]):
            problems.append(f"interrupted instances bought as {bought[:-1]}, expected spot")
        final = handed[-1]["instance_id"] if handed else ""
        if bought and bought[-1] != finished_on:
            problems.append(f"the build finished on a {bought[-1]} instance, expected {finished_on}")
        times = "1 time" if interruptions == 1 else f"{interruptions} times"
        expected = f"interrupted {times}, finished on {final} ({finished_on})"
        said = RESTART_SUMMARY.search(result.message)
        if not said or said.group(0) != expected:
            problems.append(f"the summary does not say {expected!r}")
        return problems

    return proof


def not_restarted(run: RowRun, result: Result) -> list[str]:
    """One instance, and a summary that mentions no interruption."""
    problems = []
    handed = acquisitions(run)
    if len(handed) != 1:
        problems.append(f"the job was handed {len(handed)} instance(s), expected 1")
    if RESTART_SUMMARY.search(result.message) or "The build was interrupted" in result.message:
        problems.append("the summary mentions an interruption")
    return problems


def logged(run: RowRun, function_key: str, text: str) -> list[str]:
    """The messages of the function's structured log lines (its log group) that contain `text`."""
    logs = run.deployment.client("logs")
    group = f"/aws/lambda/{run.function_name(function_key)}"
    found = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        for event in page["events"]:
            line = event["message"].strip()
            if line.startswith("{") and text in (message := str(json.loads(line).get("message", ""))):
                found.append(message)
    return found


def result_delivered_by_interruption(run: RowRun, result: Result) -> list[str]:
    """The interruption function found the command ended and delivered its outcome (rather than another path)."""
    said = logged(run, "interruption", "the command had already ended")
    return [] if said else ["the interruption function did not deliver the ended command's outcome"]


def on_demand_at_once(run: RowRun, result: Result) -> list[str]:
    """Spot had no capacity: the job's one acquire attempt launched on-demand (no retry, no wait)."""
    problems = not_restarted(run, result)
    acquired = run.invocations_since_start("acquire")
    if acquired != 1:
        problems.append(f"acquire ran {acquired} time(s), expected once")
    handed = acquisitions(run)
    if handed and (option := lifecycle(run, handed[0]["instance_id"])) != ON_DEMAND:
        problems.append(f"the build ran on a {option} instance, expected on-demand")
    return problems


def every_pool_named(instance_types: Callable[[RowRun], list[str]]) -> Proof:
    """The failure names each pool tried (each instance type in each of the stack's subnets) and why."""

    def proof(run: RowRun, result: Result) -> list[str]:
        subnets = action_config(run)["subnet_ids"]
        missing = [
            f"{kind} in {subnet}" for kind in instance_types(run) for subnet in subnets
            if f"{kind} in {subnet}" not in result.message
        ]  # fmt: skip
        problems = [f"the message does not name the pool {pool!r}" for pool in missing]
        if "InsufficientInstanceCapacity" not in result.message:
            problems.append("the message does not say why (InsufficientInstanceCapacity)")
        return problems

    return proof


def every_spot_row(*proofs: Proof) -> Proof:
    """The row's own proofs and the invariants every spot row adds: one final answer, no instance left of any the
    job was handed (the matrix checks those it tagged or handed; this names the state of each)."""

    def proof(run: RowRun, result: Result) -> list[str]:
        problems = [problem for each in proofs for problem in each(run, result)]
        problems += one_final_answer(run, result)
        ec2 = run.deployment.client("ec2")
        for instance in acquisitions(run):
            described = ec2.describe_instances(InstanceIds=[instance["instance_id"]])["Reservations"]
            state = described[0]["Instances"][0]["State"]["Name"]
            if state not in ("shutting-down", "terminated"):
                problems.append(f"instance {instance['instance_id']} is {state} after the job")
        return problems

    return proof


def action_instance_types(run: RowRun) -> list[str]:
    """The instance types a job without an InstanceType property is offered: the action's instance type, then its
    instance_types, without duplicates."""
    [action] = action_config(run)["actions"]
    offered = [action["defaults"]["InstanceType"], *action.get("types", [])]
    return list(dict.fromkeys(offered))
