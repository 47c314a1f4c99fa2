"""`make bench`: what one job costs and how long our machinery adds, measured in the local cloud.

Scenarios, per capacity strategy (each strategy is its own deployment of examples/basic-linux):
- ephemeral (a fresh instance per job): the first 2 s build after the apply (every function starts cold, and the
  AMI's registration time is not learned yet), a 2 s build with every function cold again (the time learned), the
  same with warm functions, a 30 s build, and 50 jobs started at once (cap 100: nothing queues);
- warm pool (one ready running instance): a 2 s build on it, then a burst of 100 jobs against
  max_concurrent_builds = 10 with EC2's request throttling on, sampling the instances held at every moment;
- stopped pool (one ready stopped instance): a 2 s build on it (a StartInstances instead of a first boot);
- spot (a fresh instance per job, spot first, then on-demand): 20 jobs of 20 s while 30% of the spot instances are
  interrupted during their build (faults.spot_interruptions): the restarts, the time from each interruption to the
  build command's start on the next instance, and the instance-seconds by purchase option (EC2's launch to
  termination of each instance: the basis of a cost estimate).
Per job it prints the time from the STARTED event to the launch (CreateFleet) and to the build command's start,
from the SSM Agent's registration to the command being sent (readiness seen), from the command's end to the job's
answer, the Step Functions state transitions, Lambda invocations (by function, with the cold starts and the
invocations that ended in an error) and AWS API requests (by service and operation); per CodePipeline job (the first
job and its continuation job) the AcknowledgeJob calls; the poll invocations that ran out of time; the time jobs
waited in the capacity queue; and, once the keeper has had its passes, the instances left beyond the pool's minimum.
Before the scenarios, each handler's cold import (a fresh interpreter importing it from the built zip, as a Lambda
execution environment does at init) is timed.

Figures, not asserts; the same figures go to bench-results.json (`cold_import_ms`, and one object per scenario under
`scenarios`), and each scenario's timeline chart (every job's queue wait, acquisition, boot, build and report, one row
per job: scenarios/chart.py) to bench-charts/<scenario>.png and .html beside it. AWS-side waits (SSM registration,
Retry intervals, the sweep schedule) run in real time unless LOCALCLOUD_TIME_SCALE says otherwise (e.g. 0.1 for a
quicker, noisier run). `--scenarios` runs a subset (e.g. `--scenarios spot`: only the spot deployment and its row).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("LOCALCLOUD_TIME_SCALE", "1")

from emulator import clock, faults, metrics, server, stepfunctions
from emulator.awslambda import runtime as lambda_runtime
from emulator.ec2 import throttling
from emulator.ssm import agent
from harness import timeline
from harness.deployment import Deployment, PipelineRun, unique_name
from harness.terraform import REPO_ROOT
from scenarios import chart


def _job_config(seconds: int) -> dict[str, str]:
    """A build of `seconds` on the action's own image and instance type (a pool serves only its configuration)."""
    return {"Command": f"sleep {seconds}\necho built > out.txt", "OutputArtifactPath": "out.txt"}


# Each strategy's deployment of examples/basic-linux (its variables). A registration window of 5 minutes: the burst's
# last launches wait for the throttled CreateFleet and the emulator's 8 workers per function.
STRATEGIES: dict[str, dict[str, Any]] = {
    "ephemeral": {"capacity_strategy": "ephemeral", "max_concurrent_builds": 100},
    "warm": {
        "capacity_strategy": "warm",
        "pool_min_ready": 1,
        "max_concurrent_builds": 10,
        "pool_max_idle_minutes": 0,
    },
    "stopped": {
        "capacity_strategy": "stopped",
        "pool_min_ready": 1,
        "max_concurrent_builds": 2,
        "pool_max_idle_minutes": 0,
    },
    # A fresh instance per job, bought on spot first (on-demand when spot has no capacity, or after 2 interruptions).
    "spot": {
        "capacity_strategy": "ephemeral",
        "max_concurrent_builds": 100,
        "purchase_option": "spot-then-on-demand",
        "instance_types": ["t4g.large", "m6g.large"],
    },
}
SPOT_INTERRUPTION_RATE = 0.3
SPOT_SEED = 11
POOL_MINIMUM = {name: int(variables.get("pool_min_ready", 0)) for name, variables in STRATEGIES.items()}


class HeldSampler:
    """Samples, every `interval` seconds while a scenario runs, the instances the stack holds (pending, running,
    stopping or stopped: launched or leased, not yet being terminated) and the registry's counter of members."""

    def __init__(self, deployment: Deployment, interval: float = 0.25) -> None:
        self.deployment, self.interval = deployment, interval
        self.max_instances = self.max_members = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HeldSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            held = held_instances(self.deployment)
            members = registry_counter(self.deployment).get("instances", 0)
            self.max_instances = max(self.max_instances, len(held))
            self.max_members = max(self.max_members, int(members))
            self.samples += 1


def held_instances(deployment: Deployment) -> list[dict[str, Any]]:
    return [i for i in deployment.instances() if i["State"]["Name"] in ("pending", "running", "stopping", "stopped")]


def pool_table(deployment: Deployment) -> str:
    return str(deployment.outputs.get("pool_table_name") or f"{deployment.outputs['name_prefix']}-pool")


def registry_counter(deployment: Deployment) -> dict[str, Any]:
    """The action's counter item in the registry table (instances, queued)."""
    table = pool_table(deployment)
    items = deployment.client("dynamodb").scan(TableName=table)["Items"]
    counters = [item for item in items if item["id"]["S"] == "#counter" and not item["pool"]["S"].startswith("queue#")]
    return {k: int(v["N"]) for k, v in counters[0].items() if "N" in v} if counters else {}


def ready_members(deployment: Deployment) -> int:
    items = deployment.client("dynamodb").scan(TableName=pool_table(deployment))["Items"]
    return sum(1 for item in items if item.get("state", {}).get("S") == "ready")


def run_keeper(deployment: Deployment) -> None:
    name = deployment.outputs.get("pool_keeper_function_name") or f"{deployment.outputs['name_prefix']}-keeper"
    deployment.client("lambda").invoke(FunctionName=name, Payload=b"{}")


def wait_until(condition: Any, timeout: float, keeper_of: Deployment | None = None) -> bool:
    """Poll `condition` every second up to `timeout` s; with keeper_of, run a keeper pass before each check (as the
    keeper's schedule would, without waiting a minute for it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if keeper_of is not None:
            run_keeper(keeper_of)
        if condition():
            return True
        time.sleep(1)
    return False


def _transitions(run: PipelineRun) -> int:
    return sum(stepfunctions.transitions(e["executionArn"]) for e in run.state_machine_executions)


def run_scenario(
    deployment: Deployment,
    name: str,
    build_seconds: int,
    jobs: int,
    cold: bool,
    strategy: str = "ephemeral",
    chart_to: tuple[Path, str] | None = None,
) -> dict[str, Any]:
    """Start `jobs` pipelines at once, each running a `build_seconds` build; return the scenario's figures. `cold`:
    every function's execution environments are stopped first (as Lambda recycles idle ones), so each starts cold.
    `chart_to` (directory, file name): where to write the scenario's timeline chart (its paths go under `charts`)."""
    if cold:
        lambda_runtime.shutdown()
    pipelines = [
        deployment.create_pipeline(unique_name(f"bench{build_seconds}s"), _job_config(build_seconds))
        for _ in range(jobs)
    ]
    for pipeline in pipelines:
        deployment.upload_source(pipeline, {"README.md": "bench\n"})
    invocations_before = Counter(lambda_runtime.invocations())
    errors_before = Counter(lambda_runtime.errors())
    cold_before = Counter(lambda_runtime.cold_starts())
    timeouts_before = Counter(lambda_runtime.timeouts())
    requests_before = metrics.requests()
    scheduled_before = metrics.scheduled_requests()
    throttled_before = metrics.throttled_requests()
    started = time.time()
    with HeldSampler(deployment) as held:
        executions = [(pipeline, deployment.start(pipeline)) for pipeline in pipelines]
        with ThreadPoolExecutor(max_workers=min(jobs, 16)) as pool:
            runs = list(pool.map(lambda pe: deployment.wait(pe[0], pe[1], started, timeout=1800), executions))
    wall = time.time() - started
    prefix = f"{deployment.outputs['name_prefix']}-"
    invocations = _by_function(Counter(lambda_runtime.invocations()) - invocations_before, prefix)
    errors = _by_function(Counter(lambda_runtime.errors()) - errors_before, prefix)
    cold_starts = _by_function(Counter(lambda_runtime.cold_starts()) - cold_before, prefix)
    timeouts = Counter(lambda_runtime.timeouts()) - timeouts_before
    codepipeline_jobs = [job for run in runs for job in run.jobs]
    requests = metrics.requests() - requests_before
    scheduled = metrics.scheduled_requests() - scheduled_before
    succeeded = sum(run.status == "Succeeded" for run in runs)

    # Instances beyond the pool's minimum once the keeper has had its passes (after the
    # scenario's counts: these passes are not the jobs') (idle ones above it are retired).
    minimum = POOL_MINIMUM[strategy]
    wait_until(lambda: len(held_instances(deployment)) <= minimum, 180, keeper_of=deployment)
    left_beyond_minimum = max(0, len(held_instances(deployment)) - minimum)
    per_job = [timeline.figures(deployment, run, _transitions(run)) for run in runs]
    charts = write_chart(deployment, name, runs, per_job, chart_to) if chart_to else []
    queued = [f.queue_wait for f in per_job if f.queue_wait > 0]
    restarts = [restart for run in runs for restart in timeline.restarts(deployment, run)]
    instance_seconds: Counter[str] = Counter()
    for run in runs:
        instance_seconds.update(timeline.instance_seconds(run.instances, time.time()))
    return {
        "scenario": name,
        "strategy": strategy,
        "boots": dict(sorted(Counter(str(f.boot) for f in per_job).items())),
        "jobs": jobs,
        "build_seconds": build_seconds,
        "time_scale": float(os.environ["LOCALCLOUD_TIME_SCALE"]),
        "succeeded": succeeded,
        "executions_per_job": sorted({len(run.state_machine_executions) for run in runs}),
        "final_answers_per_job": sorted({sum(not r.continuation_token for r in run.results) for run in runs}),
        "instances_left_beyond_pool_minimum": left_beyond_minimum,
        "max_instances_held_at_once": held.max_instances,
        "max_registry_members_at_once": held.max_members,
        "held_samples": held.samples,
        "jobs_queued": len(queued),
        "queue_wait_seconds": _summary([f.queue_wait for f in per_job]) if queued else None,
        "ec2_requests_throttled": sum((metrics.throttled_requests() - throttled_before).values()),
        "wall_seconds": round(wall, 2),
        "event_to_run_instances_seconds": _summary([f.event_to_run_instances for f in per_job]),
        "event_to_command_start_seconds": _summary([f.event_to_command_start for f in per_job]),
        "registration_to_readiness_seen_seconds": _summary([f.registration_to_readiness_seen for f in per_job]),
        "command_end_to_reported_seconds": _summary([f.command_end_to_reported for f in per_job]),
        "state_transitions_per_job": _summary([f.state_transitions for f in per_job]),
        "ssm_registration_checks_per_job": _summary([f.registration_checks for f in per_job]),
        "lambda_invocations_per_job": round(sum(invocations.values()) / jobs, 1),
        "lambda_invocations_per_job_by_function": _per_job(invocations, jobs),
        "lambda_cold_starts": dict(sorted(cold_starts.items())),
        # Invocations that ended in an error, per job, counted only when every job succeeded (a healthy run).
        "lambda_errors_per_job": round(sum(errors.values()) / jobs, 2) if succeeded == jobs else None,
        "lambda_errors_by_function": dict(sorted(errors.items())),
        "api_requests_per_job": round(sum(requests.values()) / jobs, 1),
        "api_requests_per_job_without_schedules": round(sum((requests - scheduled).values()) / jobs, 1),
        "scheduled_api_requests": dict(sorted(scheduled.items())),
        "api_requests_per_job_by_service": _per_job(metrics.by_service(requests), jobs),
        "api_requests_per_job_by_operation": _per_job(requests, jobs),
        "acknowledgements_per_codepipeline_job": round(
            sum(job.acknowledge_calls for job in codepipeline_jobs) / max(1, len(codepipeline_jobs)), 2
        ),
        "poll_invocations_timed_out": timeouts[f"{deployment.outputs['name_prefix']}-poll"],
        "restarts": len(restarts),
        "restart_extra_seconds": _summary([restart.extra_seconds for restart in restarts]),
        "instance_seconds_by_purchase_option": {option: round(s) for option, s in sorted(instance_seconds.items())},
        "charts": charts,
    }


def write_chart(
    deployment: Deployment,
    title: str,
    runs: list[PipelineRun],
    per_job: list[timeline.JobFigures],
    chart_to: tuple[Path, str],
) -> list[str]:
    """The scenario's timeline chart (PNG and HTML): each job's phases, its rows labelled by the order the jobs
    started and how their instance became available."""
    spans = [timeline.job_spans(deployment, run, "") for run in runs]
    boots = {id(job): figures.boot for job, figures in zip(spans, per_job, strict=True)}
    labelled = [
        dataclasses.replace(job, label=f"{rank} {boots[id(job)] or ''}".strip())
        for rank, job in enumerate(chart.ordered(spans), start=1)
    ]
    directory, name = chart_to
    return [str(path) for path in chart.write(title, labelled, directory, name)]


HANDLERS = (
    "poll",
    "acquire",
    "enqueue",
    "wait_online",
    "run_command",
    "command_event",
    "release",
    "report",
    "reap",
    "keeper",
    "interruption",
)
IMPORT_RUNS = 5


def cold_imports(dist: Path) -> dict[str, float]:
    """Median milliseconds a fresh interpreter takes to import each handler from the built zips (the function's code
    and its layer on sys.path, boto3 from the interpreter's own packages, as in the Lambda Python runtime). Without
    writing bytecode (-B): Lambda cannot write it into the read-only code and layer directories, so every cold start
    compiles the zips' sources, and so does each run here."""
    with tempfile.TemporaryDirectory(prefix="ec2-action-imports-") as work:
        code, layer = Path(work, "code"), Path(work, "layer")
        zipfile.ZipFile(dist / "ec2_action.zip").extractall(code)
        zipfile.ZipFile(dist / "dependencies_layer.zip").extractall(layer)
        timed = (
            "import sys, time; sys.path[:0] = sys.argv[1:3]; started = time.perf_counter(); "
            "import importlib; importlib.import_module(sys.argv[3]); print((time.perf_counter() - started) * 1000)"
        )
        results = {}
        for name in HANDLERS:
            command = [
                sys.executable,
                "-I",
                "-B",
                "-c",
                timed,
                str(code),
                str(layer / "python"),
                f"ec2_action.handlers.{name}",
            ]
            runs = [
                float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                for _ in range(IMPORT_RUNS)
            ]
            results[name] = round(statistics.median(runs))
        return results


def _by_function(counts: Counter[str], prefix: str) -> Counter[str]:
    """Counts keyed by the function's name without the deployment's prefix (poll, report...)."""
    return Counter({name.removeprefix(prefix): count for name, count in counts.items() if count})


def _per_job(counts: Counter[str], jobs: int) -> dict[str, float]:
    return {name: round(count / jobs, 2) for name, count in sorted(counts.items(), key=lambda item: -item[1])}


def _summary(values: list[float | int | None]) -> dict[str, float] | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return {"mean": round(statistics.fmean(known), 2), "max": round(max(known), 2)}


def _cell(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"mean", "max"}:
        return f"{value['mean']:g} (max {value['max']:g})" if value["mean"] != value["max"] else f"{value['mean']:g}"
    if isinstance(value, dict):
        return " ".join(f"{name}={count:g}" for name, count in value.items()) or "0"
    return "-" if value is None else str(value)


ROWS = (
    ("jobs", "jobs started at once"),
    ("succeeded", "succeeded"),
    ("executions_per_job", "executions per job"),
    ("final_answers_per_job", "final answers per job"),
    ("strategy", "capacity strategy"),
    ("boots", "how instances became available"),
    ("instances_left_beyond_pool_minimum", "instances left beyond the pool's minimum"),
    ("max_instances_held_at_once", "most instances held at once (sampled)"),
    ("max_registry_members_at_once", "most registry members at once (sampled)"),
    ("jobs_queued", "jobs that waited for capacity"),
    ("queue_wait_seconds", "  their wait in the queue (s)"),
    ("ec2_requests_throttled", "EC2 requests throttled (RequestLimitExceeded)"),
    ("event_to_run_instances_seconds", "STARTED event -> launch (CreateFleet) (s)"),
    ("event_to_command_start_seconds", "STARTED event -> command start (s)"),
    ("registration_to_readiness_seen_seconds", "SSM registration -> command sent (s)"),
    ("command_end_to_reported_seconds", "command end -> job answered (s)"),
    ("state_transitions_per_job", "state transitions per job"),
    ("ssm_registration_checks_per_job", "SSM registration checks per job"),
    ("lambda_invocations_per_job", "Lambda invocations per job"),
    ("lambda_cold_starts", "  cold starts (whole scenario)"),
    ("lambda_errors_per_job", "Lambda errors per job (all jobs succeeded)"),
    ("api_requests_per_job", "AWS API requests per job"),
    ("api_requests_per_job_by_service", "  by service"),
    ("api_requests_per_job_without_schedules", "  without the schedules' (sweep, reaper, keeper)"),
    ("acknowledgements_per_codepipeline_job", "AcknowledgeJob calls per CodePipeline job"),
    ("poll_invocations_timed_out", "poll invocations timed out"),
    ("restarts", "builds restarted after a spot interruption"),
    ("restart_extra_seconds", "  interruption -> next command start (s)"),
    ("instance_seconds_by_purchase_option", "instance-seconds by purchase option"),
    ("wall_seconds", "wall time of the scenario (s)"),
)


SCENARIOS = ("first", "cold", "warm", "long", "concurrent", "warm-pool", "burst", "stopped-pool", "spot")
BREAKDOWNS = (
    ("lambda_invocations_per_job_by_function", "Lambda invocations per job, by function"),
    ("api_requests_per_job_by_operation", "AWS API requests per job, by operation"),
)


def print_table(results: list[dict[str, Any]]) -> None:
    """One column per scenario; the breakdowns (too wide for a column) follow, one line per scenario."""
    width = max(len(label) for _, label in ROWS)
    columns = [result["scenario"] for result in results]
    col = max(24, *(len(c) for c in columns))
    print(f"{'':{width}}  " + "  ".join(f"{c:>{col}}" for c in columns))
    for key, label in ROWS:
        print(f"{label:{width}}  " + "  ".join(f"{_cell(r[key]):>{col}}" for r in results))
    for key, label in BREAKDOWNS:
        print(f"\n{label}:")
        for result in results:
            print(f"  {result['scenario']}: {_cell(result[key])}")


def interrupt_spot_builds(build_seconds: int) -> None:
    """From now on, each spot instance launched is interrupted (warning, then termination two AWS minutes later)
    with probability SPOT_INTERRUPTION_RATE, at a moment drawn while its build runs: after its agent registered,
    within the build's real seconds (the window is in AWS seconds, the build's own time is real)."""
    registered = agent.registration_delay()
    window = (registered + clock.aws_seconds(1), registered + clock.aws_seconds(max(2, build_seconds - 2)))
    faults.spot_interruptions(rate=SPOT_INTERRUPTION_RATE, seed=SPOT_SEED, after_seconds=window)


def run_strategy(
    cloud: server.LocalCloud, strategy: str, scenarios: list[tuple[str, str, int, int]], charts: Path
) -> list[dict[str, Any]]:
    """Apply the strategy's deployment, wait for its pool's minimum to be ready, run its scenarios (each one's chart
    written to `charts`/<scenario>.png and .html), destroy it."""
    results = []
    with tempfile.TemporaryDirectory(prefix=f"ec2-action-bench-{strategy}-") as work:
        print(f"applying the {strategy} deployment ...", flush=True)
        # One action type per deployment: a deleted type can only be registered again with its exact definition.
        variables = {"name_prefix": f"bench-{strategy}", "action_provider": f"Bench-{strategy}", **STRATEGIES[strategy]}
        deployment = Deployment.apply(cloud, Path(work), variables=variables)
        try:
            for key, title, seconds, jobs in scenarios:
                minimum = POOL_MINIMUM[strategy]
                if minimum and not wait_until(lambda m=minimum: ready_members(deployment) >= m, 300, deployment):
                    print(f"  the pool never had {minimum} ready instance(s); running anyway", flush=True)
                print(f"running: {title} ...", flush=True)
                throttling.enable(key == "burst")
                if key == "spot":
                    interrupt_spot_builds(seconds)
                try:
                    cold = key in ("first", "cold")
                    results.append(run_scenario(deployment, title, seconds, jobs, cold, strategy, (charts, key)))
                finally:
                    throttling.enable(None)
                    faults.clear()
        finally:
            deployment.destroy()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent-jobs", type=int, default=50)
    parser.add_argument("--burst-jobs", type=int, default=100)
    parser.add_argument("--spot-jobs", type=int, default=20)
    parser.add_argument("--output", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {', '.join(SCENARIOS)} (default: all, in that order)",
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}: choose from {', '.join(SCENARIOS)}")

    imports = cold_imports(REPO_ROOT / "lambda_src" / "dist")
    print("cold import of each handler (ms, median of 5): " + " ".join(f"{k}={v:g}" for k, v in imports.items()))
    cloud = server.start()  # its overrides count the requests (emulator.metrics)
    scale = os.environ["LOCALCLOUD_TIME_SCALE"]
    print(f"local cloud at {cloud.endpoint}; AWS-side waits scaled by {scale}; builds run in real time", flush=True)
    plans = {  # scenario -> (strategy, title, build seconds, jobs)
        "first": ("ephemeral", "first build of its AMI, cold", 2, 1),
        "cold": ("ephemeral", "2 s build, cold functions", 2, 1),
        "warm": ("ephemeral", "2 s build, warm functions", 2, 1),
        "long": ("ephemeral", "30 s build", 30, 1),
        "concurrent": ("ephemeral", f"{args.concurrent_jobs} jobs at once (2 s)", 2, args.concurrent_jobs),
        "warm-pool": ("warm", "warm pool: 2 s build", 2, 1),
        "burst": ("warm", f"burst of {args.burst_jobs}, cap 10, throttled (2 s)", 2, args.burst_jobs),
        "stopped-pool": ("stopped", "stopped pool: 2 s build", 2, 1),
        "spot": (
            "spot",
            f"{args.spot_jobs} jobs on spot, {SPOT_INTERRUPTION_RATE:.0%} interrupted (20 s)",
            20,
            args.spot_jobs,
        ),
    }
    charts = args.output.parent / "bench-charts"
    results = []
    try:
        for strategy in STRATEGIES:
            keys = [key for key in SCENARIOS if key in chosen and plans[key][0] == strategy]
            if keys:
                results += run_strategy(cloud, strategy, [(key, *plans[key][1:]) for key in keys], charts)
    finally:
        cloud.stop()
    print()
    print_table(results)
    print(f"\ncold import of each handler (ms): {_cell(imports)}")
    args.output.write_text(json.dumps({"cold_import_ms": imports, "scenarios": results}, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    for result in results:
        print(f"timeline of {result['scenario']}: " + ", ".join(result["charts"]))
    complete = all(r["succeeded"] == r["jobs"] and r["executions_per_job"] == [1] for r in results)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
