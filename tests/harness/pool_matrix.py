"""The pool matrix runner: rows of several jobs against a warm or a stopped instance pool, and what the pool must
still be after each (issue "Instance pools", "Fault and bad-input rows").

A row of the fault matrix (harness.matrix) is one job; a pool row is a scenario: jobs started together or one after
another, a fault injected or something done behind the pool's back while they run, and checks of what happened to
each job and to the pool (tests/e2e/pool_rows.py holds them). Each deployment of examples/basic-linux
(POOL_STACKS) serves all of its rows, one after another, so a row starts from the pool at rest: its minimum ready,
nothing leased, nobody queued.

Invariants checked for every row besides its own checks: each job ends in a terminal CodePipeline state with a final
answer whose message names the cause, exactly one execution per job; and after the keeper's and the reaper's passes
(invoked at once, as harness.matrix.reap does), no instance of the stack is left beyond the pool's minimum and the
registry's counter equals its records (instances: member records; queued: queue entries). Plan-time rows check that
`terraform plan` of the example refuses an impossible pool with the validation's message.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import codepipeline, faults
from emulator.ec2 import throttling
from harness import matrix
from harness.deployment import EXAMPLE, LIVE_STATES, Deployment, PipelineRun, unique_name
from harness.terraform import TerraformRoot

ACTION_KEY = "linux"  # the example's only action: its pool's partition in the registry table
COUNTER_ID = "#counter"
QUEUE_PARTITION = f"queue#{ACTION_KEY}"
JOB_TIMEOUT_SECONDS = 180.0
SETTLE_SECONDS = 60.0  # the keeper's passes bring a pool to rest within this (a launch registers in about 1 s)
WAIT_STEP_SECONDS = 0.25

# The two deployments of examples/basic-linux the pool rows run against, each with prefixes of its own (they may
# share a local cloud with the e2e suite's deployment). A minimum of 1 and a cap of 2: the keeper replaces a leased
# instance, so one build plus the minimum reach the cap. Idle instances above the minimum retire at the keeper's
# next pass (pool_max_idle_minutes 0), and the shortest registration window bounds a wait for one that never comes.
POOL_STACKS: dict[str, dict[str, Any]] = {
    "warm": {
        "name_prefix": "pool-warm",
        "vpc_cidr_block": "10.46.0.0/16",
        "action_provider": "EC2-Pool-Warm",
        "capacity_strategy": "warm",
        "pool_min_ready": 1,
        "max_concurrent_builds": 2,
        "pool_max_idle_minutes": 0,
        "ssm_registration_timeout_minutes": 1,
    },
    "stopped": {
        "name_prefix": "pool-stopped",
        "vpc_cidr_block": "10.47.0.0/16",
        "action_provider": "EC2-Pool-Stopped",
        "capacity_strategy": "stopped",
        "pool_min_ready": 1,
        "max_concurrent_builds": 1,
        "pool_max_idle_minutes": 0,
        "ssm_registration_timeout_minutes": 1,
    },
}


class RowFailed(AssertionError):
    """A scenario cannot go on (what it waited for never happened): the row fails with this problem."""


# ---------------------------------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One job of a row: its own pipeline (S3 source, then the pool's action), started once."""

    label: str
    pipeline: str
    command: str
    outcome: str = matrix.SUCCEEDED
    failure_type: str | None = None
    message: str = matrix.BUILD_SUCCEEDED
    execution_id: str = ""  # the pipeline execution
    started: float = 0.0
    job_id: str = ""  # its first CodePipeline job, once the action started: its state machine execution's name
    collected: PipelineRun | None = None


@dataclass(frozen=True)
class JobOutcome:
    label: str
    outcome: str
    failure_type: str | None
    message: str
    executions: int


# ---------------------------------------------------------------------------------------------------------------------
# A row being run
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class PoolRun:
    """One row being run against a deployment: its jobs, a host directory for gates, and what its checks found."""

    deployment: Deployment
    minimum: int
    scratch: Path
    jobs: list[Job] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    gates: set[str] = field(default_factory=set)

    # --- jobs ---------------------------------------------------------------------------------------------------

    def job(
        self,
        label: str,
        command: str = "echo built",
        outcome: str = matrix.SUCCEEDED,
        failure_type: str | None = None,
        message: str = matrix.BUILD_SUCCEEDED,
        configuration: Mapping[str, str] | None = None,
    ) -> Job:
        """A job with `command` and what it must end with; created, not started. Of the pool's configuration (no
        ImageId or InstanceType of its own) unless `configuration` says otherwise."""
        pipeline = unique_name(f"pool-{label}")
        action_configuration = {"Command": command, **(configuration or {})}
        self.deployment.create_pipeline(pipeline, action_configuration, output_artifact=False)
        self.deployment.upload_source(pipeline, {"README.md": f"job {label}\n"})
        job = Job(label, pipeline, command, outcome, failure_type, message)
        self.jobs.append(job)
        return job

    def start(self, *jobs: Job) -> None:
        for job in jobs:
            job.started = time.time()
            job.execution_id = self.deployment.start(job.pipeline)

    def start_one_after_another(self, jobs: Iterable[Job]) -> None:
        """Start each job once the previous one's execution has begun (so that they reach the pool in this order)."""
        for job in jobs:
            self.start(job)
            wait_for(lambda job=job: self.execution_arn(job), 30, f"job {job.label}'s execution never started")

    def wait(self, *jobs: Job) -> None:
        """Block until each job's pipeline execution ends; collect what happened."""
        for job in jobs:
            if job.collected is None and job.execution_id:
                job.collected = self.deployment.wait(
                    job.pipeline, job.execution_id, job.started, timeout=JOB_TIMEOUT_SECONDS
                )

    def job_id(self, job: Job) -> str:
        """The job's first CodePipeline job id, "" until its action started."""
        if not job.job_id:
            for queued in codepipeline.jobs(region=self.deployment.cloud.region):
                if queued.run.pipeline_name == job.pipeline and queued.run.execution_id == job.execution_id:
                    job.job_id = queued.id
                    break
        return job.job_id

    def execution_arn(self, job: Job) -> str:
        """The job's state machine execution, "" until it started."""
        job_id = self.job_id(job)
        if not job_id:
            return ""
        executions = self.deployment.state_machine_executions({job_id})
        return executions[0]["executionArn"] if executions else ""

    def history(self, job: Job) -> list[dict[str, Any]]:
        arn = self.execution_arn(job)
        if not arn:
            return []
        sfn = self.deployment.client("stepfunctions")
        return list(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])

    def acquisitions(self, job: Job) -> list[dict[str, Any]]:
        """The instances AcquireInstance handed the job (instance_id, member_id, kind, boot), in order."""
        found = []
        for event in self.history(job):
            details = event.get("stateExitedEventDetails") or {}
            if details.get("name") == "AcquireInstance" and details.get("output"):
                instance = json.loads(details["output"]).get("instance")
                if instance:
                    found.append(instance)
        return found

    def released(self, job: Job) -> dict[str, Any]:
        """What the job's ReleaseInstance step did (release's summary: terminated, returned, stopped, retired...)."""
        for event in reversed(self.history(job)):
            details = event.get("stateExitedEventDetails") or {}
            if details.get("name") == "ReleaseInstance" and details.get("output"):
                return dict(json.loads(details["output"]).get("release") or {})
        return {}

    def entered(self, job: Job, state: str) -> list[float]:
        """When the job's execution entered `state` (epoch seconds), each time."""
        return [
            _epoch(event["timestamp"])
            for event in self.history(job)
            if (event.get("stateEnteredEventDetails") or {}).get("name") == state
        ]

    def exited(self, job: Job, state: str) -> list[float]:
        return [
            _epoch(event["timestamp"])
            for event in self.history(job)
            if (event.get("stateExitedEventDetails") or {}).get("name") == state
        ]

    def build_running(self, job: Job, timeout: float = 60) -> dict[str, Any]:
        """Wait until the job's build command runs on its instance; acquire's instance (instance_id, member_id...)."""

        def running() -> dict[str, Any] | None:
            acquired = self.acquisitions(job)
            if not acquired:
                return None
            ssm = self.deployment.client("ssm")
            commands = ssm.list_commands(InstanceId=acquired[-1]["instance_id"])["Commands"]
            mine = [c for c in commands if c.get("Comment") == self.job_id(job) and c["Status"] == "InProgress"]
            return acquired[-1] if mine else None

        return wait_for(running, timeout, f"job {job.label}'s build never started running")

    def logged(self, function_key: str, message: str) -> list[dict[str, Any]]:
        """The structured log lines (JSON) of one of the stack's functions (e.g. "enqueue") with this message."""
        logs = self.deployment.client("logs")
        request = {"logGroupName": f"/aws/lambda/{self.deployment.outputs['name_prefix']}-{function_key}"}
        lines = []
        for page in logs.get_paginator("filter_log_events").paginate(**request):
            for event in page["events"]:
                text = event["message"].strip()
                if text.startswith("{") and f'"message": "{message}"' in text:
                    lines.append(json.loads(text))
        return lines

    # --- gates: a build that runs until the row lets it end ------------------------------------------------------

    def gate(self, name: str) -> Path:
        return self.scratch / f"gate-{name}"

    def gated_command(self, name: str) -> str:
        """A build that waits (at most two minutes) until the row opens the gate `name` (the local cloud's agent
        runs the command on this machine), then succeeds."""
        path = self.gate(name)
        self.gates.add(name)
        return f"for i in $(seq 1200); do [ -e {path} ] && break; sleep 0.1; done\necho built after gate {name}"

    def open_gate(self, name: str) -> None:
        self.gate(name).touch()

    # --- the pool ------------------------------------------------------------------------------------------------

    def _query(self, partition: str) -> list[dict[str, Any]]:
        table = self.deployment.outputs["pool_table_name"]
        ddb = self.deployment.client("dynamodb")
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#pool = :pool",
            "ExpressionAttributeNames": {"#pool": "pool"},
            "ExpressionAttributeValues": {":pool": {"S": partition}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = ddb.query(**request)
            items += [_plain(item) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def members(self) -> list[dict[str, Any]]:
        """The pool's member records (the registry, read as the observer)."""
        return [item for item in self._query(ACTION_KEY) if item["id"].startswith("m-")]

    def counter(self) -> dict[str, int]:
        found = [item for item in self._query(ACTION_KEY) if item["id"] == COUNTER_ID]
        item = found[0] if found else {}
        return {"instances": int(item.get("instances", 0)), "queued": int(item.get("queued", 0))}

    def queue_entries(self) -> list[dict[str, Any]]:
        return self._query(QUEUE_PARTITION)

    def ready_members(self) -> list[dict[str, Any]]:
        return [m for m in self.members() if m["state"] == "ready" and not m.get("lease_job")]

    def live_instances(self) -> list[dict[str, Any]]:
        """Instances of the stack that still exist (and cost)."""
        return [i for i in self.deployment.instances() if i["State"]["Name"] in LIVE_STATES]

    def instance_state(self, instance_id: str) -> str:
        ec2 = self.deployment.client("ec2")
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return str(reservations[0]["Instances"][0]["State"]["Name"])

    def keeper(self) -> dict[str, Any]:
        """One keeper pass at once (its schedule runs it every minute of AWS time); its summary."""
        return invoke(self.deployment, self.deployment.outputs["pool_keeper_function_name"])

    def reap(self) -> None:
        matrix.reap(self.deployment)

    def at_rest(self) -> str:
        """What keeps the pool from being at rest ("" when it is): its minimum ready, nothing else held, nobody
        queued, the counter equal to the records, no other instance alive."""
        members, counter, entries = self.members(), self.counter(), self.queue_entries()
        ready = [m for m in members if m["state"] == "ready" and not m.get("lease_job")]
        live = self.live_instances()
        if len(ready) != self.minimum or len(members) != self.minimum:
            return f"{len(ready)} ready of {len(members)} members ({_states(members)}), minimum {self.minimum}"
        if entries or counter != {"instances": len(members), "queued": 0}:
            return f"counter {counter}, {len(members)} members, {len(entries)} queue entries"
        if len(live) != self.minimum:
            return f"{len(live)} live instances, minimum {self.minimum}"
        return ""

    def settle(self, timeout: float = SETTLE_SECONDS) -> str:
        """Run keeper passes until the pool is at rest; "" then, else what is still not at rest."""
        deadline = time.monotonic() + timeout
        while True:
            self.keeper()
            unrest = self.at_rest()
            if not unrest or time.monotonic() > deadline:
                return unrest
            time.sleep(0.5)

    def keep_until(self, condition: Callable[[], Any], timeout: float, failure: str) -> Any:
        """wait_for with a keeper pass before each check (as its schedule would run it, without waiting for it)."""

        def kept() -> Any:
            self.keeper()
            return condition()

        return wait_for(kept, timeout, failure)

    def check(self, holds: bool, problem: str) -> None:
        if not holds:
            self.observed.append(problem)

    def paused_keeper_schedule(self) -> KeeperPause:
        """Hold the keeper's schedule (a context): nothing tends the pool but the jobs themselves meanwhile."""
        return KeeperPause(self.deployment)


class KeeperPause:
    """The keeper's EventBridge schedule disabled while inside, enabled again on the way out."""

    def __init__(self, deployment: Deployment) -> None:
        self.events = deployment.client("events")
        self.rule = f"{deployment.outputs['name_prefix']}-pool-keeper"

    def __enter__(self) -> KeeperPause:
        self.events.disable_rule(Name=self.rule)
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.enable_rule(Name=self.rule)


def invoke(deployment: Deployment, function_name: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    response = deployment.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(payload or {}))
    body = response["Payload"].read().decode()
    if response.get("FunctionError"):
        raise RuntimeError(f"{function_name} failed: {body[:500]}")
    return dict(json.loads(body or "{}") or {})


def wait_for(condition: Callable[[], Any], timeout: float, failure: str) -> Any:
    """Poll `condition` until it returns something truthy (returned); RowFailed(failure) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RowFailed(failure)
        time.sleep(WAIT_STEP_SECONDS)


def _epoch(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _plain(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A DynamoDB item as plain values (numbers as floats)."""
    values: dict[str, Any] = {}
    for name, typed in item.items():
        [(kind, value)] = typed.items()
        values[name] = float(value) if kind == "N" else value
    return values


def _states(members: list[dict[str, Any]]) -> str:
    return ", ".join(f"{m['id']} {m['state']}{' leased' if m.get('lease_job') else ''}" for m in members) or "none"


# ---------------------------------------------------------------------------------------------------------------------
# Rows and results
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolRow:
    """A scenario against one of POOL_STACKS: `scenario` creates and starts its jobs (PoolRun.job/start), injects
    what goes wrong, waits for them, and records what its own checks found (PoolRun.check)."""

    id: str
    description: str
    scenario: Callable[[PoolRun], None]


@dataclass(frozen=True)
class PlanRow:
    """Variables of examples/basic-linux that `terraform plan` must refuse, and the validation message it says."""

    id: str
    description: str
    variables: Mapping[str, Any]
    message: str


@dataclass
class PoolResult:
    id: str
    description: str
    jobs: list[JobOutcome] = field(default_factory=list)
    instances_left: int | None = None  # live instances of the stack after the passes
    minimum: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    summary: str = ""  # a plan row's outcome

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def executions(self) -> str:
        return ", ".join(str(job.executions) for job in self.jobs) or "-"


def run_pool_row(deployment: Deployment, row: PoolRow) -> PoolResult:
    """Run `row` from the pool at rest; never raises (a crash of the run is a problem of the result)."""
    minimum = int(deployment.variables.get("pool_min_ready", 0))
    result = PoolResult(row.id, row.description, minimum=minimum)
    scratch = Path(tempfile.mkdtemp(prefix=f"pool-{row.id}-"))
    run = PoolRun(deployment, minimum, scratch)
    began = time.monotonic()
    try:
        unrest = run.settle()
        if unrest:
            result.problems.append(f"the pool was not at rest before the row: {unrest}")
        row.scenario(run)
    except Exception as exc:
        result.problems.append(f"the run failed: {type(exc).__name__}: {exc}")
    finally:
        faults.clear()
        throttling.enable(None)
        for name in run.gates:
            run.open_gate(name)  # no build waits on a gate after its row
    try:
        run.wait(*run.jobs)
        _judge_jobs(run, result)
        result.problems += run.observed
        _judge_pool(run, result)
    except Exception as exc:
        result.problems.append(f"collecting the row failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = time.monotonic() - began
    return result


def _judge_jobs(run: PoolRun, result: PoolResult) -> None:
    """Each job: a terminal CodePipeline state, a final answer with the expected outcome naming the cause, one
    execution."""
    for job in run.jobs:
        collected = job.collected
        if collected is None:
            result.problems.append(f"job {job.label} never ran")
            continue
        final = collected.final_result
        message = ((final.summary if final.kind == "success" else final.message) or "") if final else ""
        outcome = JobOutcome(
            job.label,
            collected.status,
            final.failure_type if final else None,
            message,
            len(collected.state_machine_executions),
        )
        result.jobs.append(outcome)
        problems = result.problems
        if final is None:
            problems.append(f"job {job.label} was never answered")
        unfinished = [f"{j.id} {j.status}" for j in collected.jobs if j.status not in matrix.TERMINAL_JOB_STATES]
        if unfinished:
            problems.append(f"job {job.label}: CodePipeline jobs not in a terminal state: {', '.join(unfinished)}")
        expect(problems, f"job {job.label}'s outcome", outcome.outcome, job.outcome)
        expect(problems, f"job {job.label}'s failure type", outcome.failure_type, job.failure_type)
        if job.message not in message:
            problems.append(f"job {job.label}'s message does not contain {job.message!r}")
        expect(problems, f"job {job.label}'s executions", outcome.executions, 1)


def _judge_pool(run: PoolRun, result: PoolResult) -> None:
    """After the keeper's and the reaper's passes: no instance beyond the pool's minimum, the counter equal to the
    records. Passes are repeated for a while: a release still retiring an instance, or the keeper's own schedule,
    may be midway."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        run.keeper()
        run.reap()
        run.keeper()
        live = run.live_instances()
        members, counter, entries = run.members(), run.counter(), run.queue_entries()
        problems = []
        if len(live) > run.minimum:
            ids = ", ".join(f"{i['InstanceId']} {i['State']['Name']}" for i in live)
            problems.append(f"{len(live)} instances left, beyond the pool's minimum of {run.minimum}: {ids}")
        if counter != {"instances": len(members), "queued": len(entries)}:
            problems.append(f"the registry's counter {counter} is not its records: {len(members)} members "
                            f"({_states(members)}), {len(entries)} queue entries")  # fmt: skip
        if not problems or time.monotonic() > deadline:
            result.instances_left = len(live)
            result.problems += problems
            return
        time.sleep(0.5)


def expect(problems: list[str], what: str, actual: Any, expected: Any) -> None:
    if actual != expected:
        problems.append(f"{what}: {actual!r}, expected {expected!r}")


def run_plan_row(cloud_env: Mapping[str, str], region: str, work_dir: Path, row: PlanRow) -> PoolResult:
    """`terraform plan` of basic-linux with the row's variables (no apply): it must fail with the row's message."""
    result = PoolResult(row.id, row.description)
    began = time.monotonic()
    try:
        root = TerraformRoot(EXAMPLE, work_dir, env=dict(cloud_env))
        root.init()
        variables = {"region": region, **row.variables}
        plan = root.run(
            "plan", "-input=false", "-no-color", "-refresh=false", "-lock=false",
            *(f"-var={name}={value}" for name, value in variables.items()), check=False,
        )  # fmt: skip
        output = " ".join(f"{plan.stdout}\n{plan.stderr}".split())  # Terraform wraps long messages
        message = " ".join(row.message.split())
        errors = "; ".join(line for line in plan.stderr.splitlines() if line.startswith("Error:")) or "no error"
        refused = plan.returncode != 0
        result.summary = f"refused: {message}" if refused and message in output else f"exit {plan.returncode}: {errors}"
        if not refused:
            result.problems.append("terraform plan accepted the variables")
        if message not in output:
            result.problems.append(f"the plan's output does not say {row.message!r}: {errors[:500]}")
    except Exception as exc:
        result.problems.append(f"the plan failed to run: {type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - began
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Reading results
# ---------------------------------------------------------------------------------------------------------------------


MESSAGE_WIDTH = 90


def shorten(message: str, width: int = MESSAGE_WIDTH) -> str:
    return textwrap.shorten(message, width, placeholder="…") if message.strip() else "-"


def outcome_cell(result: PoolResult) -> str:
    if not result.jobs:
        return result.summary or "-"
    cells = []
    for job in result.jobs:
        kind = f"{job.outcome} ({job.failure_type})" if job.failure_type else job.outcome
        cells.append(f"{job.label}: {kind}: {shorten(job.message, 60)}")
    return "; ".join(cells)


def verdict(result: PoolResult, with_problems: bool = True) -> str:
    if result.passed:
        return "pass"
    return "FAIL: " + "; ".join(result.problems) if with_problems else f"FAIL ({len(result.problems)} problems)"


def table(results: Iterable[PoolResult], with_problems: bool = True) -> str:
    """A Markdown table: one line per row (a failed row's problems in its verdict, unless listed elsewhere)."""
    header = ["pool row", "jobs: outcome and message", "instances left (minimum)", "executions", "verdict", "s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        left = "-" if result.instances_left is None else f"{result.instances_left} ({result.minimum})"
        cells = [f"{result.id}: {result.description}", outcome_cell(result), left, result.executions]
        cells += [verdict(result, with_problems), f"{result.seconds:.0f}"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def explain(results: Iterable[PoolResult]) -> str:
    """The failed rows, for an assertion message: every problem, then the whole table."""
    results = list(results)
    lines = []
    for result in results:
        if not result.passed:
            lines.append(f"{result.id}: {result.description}")
            lines += [f"  problem: {problem}" for problem in result.problems]
            lines += [f"  job {job.label}: {job.outcome} {job.failure_type or ''} {shorten(job.message, 300)}"
                      for job in result.jobs]  # fmt: skip
    return "\n".join([*lines, "", table(results, with_problems=False)])
