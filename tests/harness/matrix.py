"""The matrix runner: rows of what goes wrong and what the module must do about it, run one at a time.

The rows themselves are data beside the tests that run them (tests/e2e/fault_rows.py, tests/e2e/bad_input_rows.py).
A row says what goes wrong (a fault injected into the local cloud, or a bad action configuration) and what the
module must do about it. `run_row` runs one row against a Deployment, in its own pipeline, and returns a `Result`:
the job's outcome and message, instances left running after the reaper window, executions started, and every broken
expectation (`problems`). Used by tests/e2e/test_fault_matrix.py, tests/e2e/test_bad_input_matrix.py and
`python -m scenarios.faults_report` (`make faults`).

Invariants checked for every row besides its own expectations: the job ends in a terminal CodePipeline state with
a final answer whose message names the cause, exactly one execution per job, no instance running after the reaper
window (the reaper Lambda invoked twice: mark, then terminate), and no instance at all if the row forbids a launch.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import codepipeline, events, faults
from emulator.awslambda import runtime as lambda_runtime
from harness import job_metrics
from harness.deployment import LIVE_STATES, Deployment, PipelineRun, unique_name

SUCCEEDED, FAILED, QUEUED = "Succeeded", "Failed", "Queued"
REJECTED = "rejected before launch (ConfigurationError)"
LITERAL = "runs literally"
TERMINAL_JOB_STATES = ("Succeeded", "Failed")
ACTION_EVENT = "CodePipeline Action Execution State Change"
QUEUED_WINDOW_SECONDS = 12.0  # four sweeps at the e2e time scale
RUN_TIMEOUT_SECONDS = 240.0
BUILD_SUCCEEDED = "Build succeeded on instance"
SDK_ATTEMPTS = 3  # the Lambdas' botocore clients use standard retries: 3 attempts, 5xx and throttling retried
# The instance types the matrices' deployment offers beside the example's own (t4g.medium), in that order.
DEPLOYMENT_INSTANCE_TYPES = ["t4g.large", "m6g.large"]
# What the matrices' deployment is applied with: the registration window is waited for inside the wait_online
# function, in its own (real) time, so the shortest window keeps the never-registers row to a minute. Its action
# buys spot first and falls back to on-demand, so every job of the e2e suite launches through EC2 Fleet on spot.
DEPLOYMENT_VARIABLES: dict[str, Any] = {
    "ssm_registration_timeout_minutes": 1,
    "purchase_option": "spot-then-on-demand",
    "instance_types": DEPLOYMENT_INSTANCE_TYPES,
}


# ---------------------------------------------------------------------------------------------------------------------
# Rows, runs, results
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class RowRun:
    """One row being run: its pipeline, a host directory for markers, and what the row's hooks observed."""

    deployment: Deployment
    pipeline: str
    scratch: Path
    execution_id: str = ""
    started: float = 0.0
    invocations_before: dict[str, int] = field(default_factory=dict)
    observed: list[str] = field(default_factory=list)  # problems the row's hooks saw while it ran
    collected: PipelineRun | None = None

    def function_name(self, key: str) -> str:
        return f"{self.deployment.outputs['name_prefix']}-{key.replace('_', '-')}"

    def invocations_since_start(self, key: str) -> int:
        name = self.function_name(key)
        return lambda_runtime.invocations().get(name, 0) - self.invocations_before.get(name, 0)


Hook = Callable[[RowRun], None]
Proof = Callable[[RowRun, "Result"], list[str]]


@dataclass(frozen=True)
class Row:
    """One case of a matrix. `configure` returns action configuration over the default (the example's arm64 AMI,
    `instance_type`, `command`); `inject` runs before the pipeline starts, `during` after; `proof` returns extra
    problems. `instance_type` None: no InstanceType property, the job takes the action's own instance types."""

    id: str
    description: str
    outcome: str
    failure_type: str | None = None
    message: str = ""
    may_launch: bool = True
    handling: str | None = None  # bad input only: REJECTED or LITERAL
    command: str = "echo built"
    instance_type: str | None = "t4g.micro"
    configure: Callable[[RowRun], Mapping[str, str]] | None = None
    inject: Hook | None = None
    during: Hook | None = None
    proof: Proof | None = None
    output_artifact: bool = False


@dataclass
class Result:
    row: Row
    outcome: str = "no end"
    failure_type: str | None = None
    message: str = ""
    instances_launched: int = 0
    instances_left: int = 0
    executions: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def default_configuration(run: RowRun, row: Row) -> dict[str, str]:
    base = {"ImageId": run.deployment.outputs["image_id"], "Command": row.command}
    if row.instance_type is not None:
        base["InstanceType"] = row.instance_type
    return base | dict(row.configure(run) if row.configure else {})


# ---------------------------------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------------------------------


def run_row(deployment: Deployment, row: Row) -> Result:
    """Run `row` in a new pipeline; never raises (a crash of the run is a problem of the result)."""
    result = Result(row)
    scratch = Path(tempfile.mkdtemp(prefix=f"matrix-{row.id}-"))
    run = RowRun(deployment, unique_name(row.id[:40]), scratch)
    began = time.monotonic()
    try:
        _run(run, row, result)
    except Exception as exc:
        result.problems.append(f"the run failed: {type(exc).__name__}: {exc}")
    finally:
        faults.clear()
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = time.monotonic() - began
    return result


def _run(run: RowRun, row: Row, result: Result) -> None:
    deployment = run.deployment
    deployment.create_pipeline(run.pipeline, default_configuration(run, row), output_artifact=row.output_artifact)
    deployment.upload_source(run.pipeline, {"README.md": "hello\n"})
    run.invocations_before = lambda_runtime.invocations()
    try:
        if row.inject:
            row.inject(run)
        run.started = time.time()
        run.execution_id = deployment.start(run.pipeline)
        if row.during:
            row.during(run)
        if row.outcome == QUEUED:
            _observe_queued(run, result)
        else:
            run.collected = deployment.wait(run.pipeline, run.execution_id, run.started, timeout=RUN_TIMEOUT_SECONDS)
    finally:
        faults.clear()
    if run.collected is not None:
        reap(deployment)
        _judge(run, row, run.collected, result)
    result.problems += run.observed
    if row.proof:
        result.problems += row.proof(run, result)


def reap(deployment: Deployment) -> None:
    """The reaper window: two reaper passes (the first marks orphaned instances, the second terminates them)."""
    client = deployment.client("lambda")
    for _ in range(2):
        response = client.invoke(FunctionName=deployment.outputs["reaper_function_name"], Payload=b"{}")
        if response.get("FunctionError"):
            raise RuntimeError(f"the reaper failed: {response['Payload'].read().decode()[:500]}")


def _judge(run: RowRun, row: Row, pipeline_run: PipelineRun, result: Result) -> None:
    """The row's expectations and the invariants, from what the pipeline run left behind."""
    instances = run.deployment.instances({job.id for job in pipeline_run.jobs})
    final = pipeline_run.final_result
    result.outcome = pipeline_run.status
    result.failure_type = final.failure_type if final else None
    result.message = (final.summary if final.kind == "success" else final.message) or "" if final else ""
    result.instances_launched = len(instances)
    result.instances_left = sum(i["State"]["Name"] in LIVE_STATES for i in instances)
    result.executions = len(pipeline_run.state_machine_executions)
    problems = result.problems
    if final is None:
        problems.append("the job was never answered")
    unfinished = [f"{job.id} {job.status}" for job in pipeline_run.jobs if job.status not in TERMINAL_JOB_STATES]
    if unfinished:
        problems.append(f"jobs not in a terminal state: {', '.join(unfinished)}")
    _expect(problems, "outcome", result.outcome, row.outcome)
    _expect(problems, "failure type", result.failure_type, row.failure_type)
    if row.message not in result.message:
        problems.append(f"the message does not contain {row.message!r}")
    _expect(problems, "executions", result.executions, 1)
    _expect(problems, "instances left running", result.instances_left, 0)
    if not row.may_launch and result.instances_launched:
        problems.append(f"{result.instances_launched} instance(s) launched; this row allows none")


def _observe_queued(run: RowRun, result: Result) -> None:
    """A row whose job no poller can take: watch it for a few sweeps, then abandon the pipeline execution."""
    time.sleep(QUEUED_WINDOW_SECONDS)
    region = run.deployment.cloud.region
    jobs = [job for job in codepipeline.jobs(region=region) if job.run.pipeline_name == run.pipeline]
    job_ids = {job.id for job in jobs}
    statuses = sorted({job.status for job in jobs})
    answers = [r for r in codepipeline.results(region=region) if r.job_id in job_ids]
    result.outcome = "/".join(statuses) or "no job"
    result.message = "(not answered)" if not answers else answers[-1].message or ""
    result.instances_launched = result.instances_left = len(run.deployment.instances(job_ids))
    result.executions = len(run.deployment.state_machine_executions(job_ids))
    _expect(result.problems, "job states", statuses, [QUEUED])
    _expect(result.problems, "answers", len(answers), 0)
    _expect(result.problems, "executions", result.executions, 0)
    _expect(result.problems, "instances", result.instances_launched, 0)
    run.deployment.client("codepipeline").stop_pipeline_execution(
        pipelineName=run.pipeline, pipelineExecutionId=run.execution_id, abandon=True, reason="matrix row cleanup"
    )


def _expect(problems: list[str], what: str, actual: Any, expected: Any) -> None:
    if actual != expected:
        problems.append(f"{what}: {actual!r}, expected {expected!r}")


# ---------------------------------------------------------------------------------------------------------------------
# Hooks: faults injected, things done while a job runs, proofs
# ---------------------------------------------------------------------------------------------------------------------


def crash(key: str, times: int | None) -> Hook:
    """The Lambda `key` (e.g. "wait_online") crashes `times` times (None: always)."""
    return lambda run: faults.crash_lambda(run.function_name(key), times)


def api_error(service: str, operation: str, code: str, times: int | None, status: int = 400) -> Hook:
    return lambda run: faults.inject_api_error(service, operation, code, f"{code} (injected)", times, status)


def ran_at_least(key: str, count: int) -> Proof:
    """The Lambda `key` ran at least `count` times during the row: the crash fired and the step was retried."""

    def proof(run: RowRun, result: Result) -> list[str]:
        ran = run.invocations_since_start(key)
        return [] if ran >= count else [f"{key} ran {ran} time(s), expected at least {count}"]

    return proof


def errors_alarmed(key: str) -> Proof:
    """An operator is told: a CloudWatch alarm watches the Lambda `key`'s Errors metric."""

    def proof(run: RowRun, result: Result) -> list[str]:
        name = f"{run.deployment.outputs['name_prefix']}-{key.replace('_', '-')}-errors"
        alarms = run.deployment.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
        watched = [a for a in alarms if a["MetricName"] == "Errors" and a["Namespace"] == "AWS/Lambda"]
        function = {"Name": "FunctionName", "Value": run.function_name(key)}
        return [] if watched and function in watched[0]["Dimensions"] else [f"no Errors alarm named {name}"]

    return proof


def job_metrics_say(result: str) -> Proof:
    """The job's CloudWatch metrics (printed by the functions in EMF) tell what happened: one JobsFinished under
    `result` and the phases it went through (harness.job_metrics.problems)."""

    def proof(run: RowRun, row_result: Result) -> list[str]:
        if run.collected is None:
            return ["no pipeline run to read the metrics of"]
        window = job_metrics.JobWindow(run.deployment, run.started)
        return job_metrics.problems(window, result, run.collected.ended - run.started, run.collected.jobs[0].id)

    return proof


def all_of(*proofs: Proof) -> Proof:
    def proof(run: RowRun, result: Result) -> list[str]:
        return [problem for each in proofs for problem in each(run, result)]

    return proof


def _is_started_event(detail: Mapping[str, Any], pipeline: str) -> bool:
    return (
        detail.get("pipeline") == pipeline
        and detail.get("state") == "STARTED"
        and (detail.get("type") or {}).get("owner") == "Custom"
    )


def _deliveries_of_started(pipeline: str) -> Iterator[dict[str, Any]]:
    for delivery in events.deliveries():
        event = delivery.payload if isinstance(delivery.payload, dict) else json.loads(delivery.payload or "{}")
        if event.get("detail-type") == ACTION_EVENT and _is_started_event(event.get("detail") or {}, pipeline):
            yield event


def started_event(run: RowRun, timeout: float = 30) -> dict[str, Any]:
    """The STARTED event of our action in this row's pipeline, as EventBridge delivered it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in _deliveries_of_started(run.pipeline):
            return event
        time.sleep(0.05)
    raise AssertionError(f"no STARTED event for {run.pipeline}")


def redeliver_started_event(run: RowRun) -> None:
    """EventBridge delivers at least once: the same STARTED event twice more."""
    event = started_event(run)
    for _ in range(2):
        events.emit(
            event["source"],
            event["detail-type"],
            event["detail"],
            account=event["account"],
            region=event["region"],
            resources=event.get("resources", []),
        )


def two_pollers(run: RowRun) -> None:
    """Two poll invocations racing for the same job."""
    payload = json.dumps(started_event(run))
    client = run.deployment.client("lambda")
    name = run.deployment.outputs["poll_function_name"]
    pollers = [threading.Thread(target=client.invoke, kwargs={"FunctionName": name, "Payload": payload}) for _ in "ab"]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join()


def lose_started_event(run: RowRun) -> None:
    faults.drop_events(ACTION_EVENT, count=1, match=lambda detail: _is_started_event(detail, run.pipeline))


def no_started_event_delivered(run: RowRun, result: Result) -> list[str]:
    delivered = list(_deliveries_of_started(run.pipeline))
    return [f"the STARTED event was delivered {len(delivered)} time(s); it should have been lost"] if delivered else []


def one_final_answer(run: RowRun, result: Result) -> list[str]:
    results = run.collected.results if run.collected else []
    finals = [r for r in results if not r.continuation_token]
    return [] if len(finals) == 1 else [f"{len(finals)} final answers, expected 1"]


def build_on_instance(run: RowRun, timeout: float = 60) -> tuple[str, str]:
    """Wait until the row's build command runs: (first job id, instance id)."""
    region, ssm = run.deployment.cloud.region, run.deployment.client("ssm")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job_ids = {j.id for j in codepipeline.jobs(region=region) if j.run.pipeline_name == run.pipeline}
        for instance in run.deployment.instances(job_ids):
            commands = ssm.list_commands(InstanceId=instance["InstanceId"])["Commands"]
            if any(c["Status"] == "InProgress" for c in commands):
                job_id = next(t["Value"] for t in instance["Tags"] if t["Key"] == "ec2-action:job-id")
                return job_id, instance["InstanceId"]
        time.sleep(0.2)
    raise AssertionError(f"the build of {run.pipeline} never started running")


def _pipeline_ended(run: RowRun) -> bool:
    execution = run.deployment.client("codepipeline").get_pipeline_execution(
        pipelineName=run.pipeline, pipelineExecutionId=run.execution_id
    )["pipelineExecution"]
    return execution["status"] not in ("InProgress", "Stopping")


def reap_until_answered(run: RowRun, timeout: float = 60) -> None:
    """Run the reaper until the pipeline's execution ends (the reaper is what answers the job in these rows)."""
    deadline = time.monotonic() + timeout
    while not _pipeline_ended(run) and time.monotonic() < deadline:
        reap(run.deployment)
        time.sleep(0.5)


def stop_execution_by_hand(run: RowRun) -> None:
    """Someone stops the build's execution in the Step Functions console while the command runs."""
    job_id, _ = build_on_instance(run)
    arn = poll_execution_arn(run, job_id)
    run.deployment.client("stepfunctions").stop_execution(executionArn=arn, error="Manual", cause="stopped by hand")
    reap_until_answered(run)


def poll_execution_arn(run: RowRun, job_id: str) -> str:
    prefix = run.deployment.outputs["state_machine_arn"].replace(":stateMachine:", ":execution:", 1)
    return f"{prefix}:{job_id}"


def race_the_reaper(run: RowRun) -> None:
    """The reaper runs again and again while the build runs; the instance must stay up until the build ends."""
    _, instance_id = build_on_instance(run)
    ec2, ssm = run.deployment.client("ec2"), run.deployment.client("ssm")
    while not _pipeline_ended(run):
        reap(run.deployment)
        commands = ssm.list_commands(InstanceId=instance_id)["Commands"]
        state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
        if any(c["Status"] == "InProgress" for c in commands) and state != "running":
            run.observed.append(f"the reaper left instance {instance_id} {state} while its build ran")
            return
        time.sleep(0.5)


def marker(run: RowRun) -> Path:
    """A host file that an injected shell command would create."""
    return run.scratch / "injected"


def no_marker(run: RowRun, result: Result) -> list[str]:
    return [f"{marker(run)} exists: the input was run as shell code"] if marker(run).exists() else []


def output_contains(*texts: str) -> Proof:
    def proof(run: RowRun, result: Result) -> list[str]:
        return [f"the build output lacks {text!r}" for text in texts if text not in result.message] + no_marker(
            run, result
        )

    return proof


def shell_metacharacters(run: RowRun) -> str:
    """Quotes, $(), backticks and a semicolon, each of which would create the marker if run as shell code."""
    m = marker(run)
    return f"""it's "q" $(touch {m}) `touch {m}`; touch {m}"""


def literal_output_artifact(run: RowRun, result: Result) -> list[str]:
    if result.outcome != SUCCEEDED or run.collected is None:
        return []
    files = run.deployment.read_output_artifact(run.collected)
    return [] if list(files.values()) == [b"artifact\n"] else [f"unexpected output artifact {sorted(files)}"]


# ---------------------------------------------------------------------------------------------------------------------
# Reading results
# ---------------------------------------------------------------------------------------------------------------------


def rows_by_id(rows: list[Row]) -> dict[str, Row]:
    return {row.id: row for row in rows}


def explain(result: Result) -> str:
    """A failed row, for an assertion message: what was expected, what happened, every problem."""
    row = result.row
    expected = f"{row.outcome} {row.failure_type or ''} containing {row.message!r}".strip()
    lines = [
        f"{row.id}: {row.description}",
        f"  expected: {expected}",
        f"  got: {result.outcome} {result.failure_type}",
    ]
    lines += [f"  message: {result.message[:1500]}", *(f"  problem: {problem}" for problem in result.problems)]
    return "\n".join(lines)


def check_row(deployment: Deployment, row: Row) -> Result:
    """Run a row as a test: AssertionError (saying why) unless every expectation and invariant holds."""
    result = run_row(deployment, row)
    assert result.passed, explain(result)
    return result
