"""`make bench`: what one job costs and how long our machinery adds, measured in the local cloud.

Scenarios: a 2 s build, a 30 s build, 50 jobs started at once, and a burst of 100 jobs started within a second. Per
job it prints the time from the STARTED event to the build command's start (poll, validate, launch, SSM
registration), from the command's end to the job's answer, the Step Functions state transitions, Lambda invocations
and AWS API requests; per CodePipeline job (the first job and its continuation job) the AcknowledgeJob calls; and
the poll invocations that ran out of time. Figures, not asserts; the same
figures go to bench-results.json (one object per scenario). AWS-side waits (SSM registration, Retry intervals, the
sweep schedule) run in real time unless LOCALCLOUD_TIME_SCALE says otherwise (e.g. 0.1 for a quicker, noisier run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("LOCALCLOUD_TIME_SCALE", "1")

from emulator import metrics, server, stepfunctions
from emulator.awslambda import runtime as lambda_runtime
from harness import timeline
from harness.deployment import Deployment, PipelineRun, unique_name


def _job_config(deployment: Deployment, seconds: int) -> dict[str, str]:
    return {
        "ImageId": deployment.outputs["image_id"],
        "InstanceType": "t3.micro",
        "Command": f"sleep {seconds}\necho built > out.txt",
        "OutputArtifactPath": "out.txt",
    }


def _transitions(run: PipelineRun) -> int:
    return sum(stepfunctions.transitions(e["executionArn"]) for e in run.state_machine_executions)


def run_scenario(deployment: Deployment, name: str, build_seconds: int, jobs: int) -> dict[str, Any]:
    """Start `jobs` pipelines at once, each running a `build_seconds` build; return the scenario's figures."""
    pipelines = [
        deployment.create_pipeline(unique_name(f"bench{build_seconds}s"), _job_config(deployment, build_seconds))
        for _ in range(jobs)
    ]
    for pipeline in pipelines:
        deployment.upload_source(pipeline, {"README.md": "bench\n"})
    invocations_before = Counter(lambda_runtime.invocations())
    timeouts_before = Counter(lambda_runtime.timeouts())
    requests_before = metrics.requests()
    started = time.time()
    executions = [(pipeline, deployment.start(pipeline)) for pipeline in pipelines]
    with ThreadPoolExecutor(max_workers=min(jobs, 16)) as pool:
        runs = list(pool.map(lambda pe: deployment.wait(pe[0], pe[1], started, timeout=900), executions))
    wall = time.time() - started
    invocations = sum((Counter(lambda_runtime.invocations()) - invocations_before).values())
    timeouts = Counter(lambda_runtime.timeouts()) - timeouts_before
    codepipeline_jobs = [job for run in runs for job in run.jobs]
    requests = sum((metrics.requests() - requests_before).values())

    per_job = [timeline.figures(deployment, run, _transitions(run)) for run in runs]
    return {
        "scenario": name,
        "jobs": jobs,
        "build_seconds": build_seconds,
        "time_scale": float(os.environ["LOCALCLOUD_TIME_SCALE"]),
        "succeeded": sum(run.status == "Succeeded" for run in runs),
        "executions_per_job": sorted({len(run.state_machine_executions) for run in runs}),
        "final_answers_per_job": sorted({sum(not r.continuation_token for r in run.results) for run in runs}),
        "instances_left_running": sum(len(run.live_instances) for run in runs),
        "wall_seconds": round(wall, 2),
        "event_to_command_start_seconds": _summary([f.event_to_command_start for f in per_job]),
        "command_end_to_reported_seconds": _summary([f.command_end_to_reported for f in per_job]),
        "state_transitions_per_job": _summary([f.state_transitions for f in per_job]),
        "ssm_registration_checks_per_job": _summary([f.registration_checks for f in per_job]),
        "lambda_invocations_per_job": round(invocations / jobs, 1),
        "api_requests_per_job": round(requests / jobs, 1),
        "acknowledgements_per_codepipeline_job": round(
            sum(job.acknowledge_calls for job in codepipeline_jobs) / max(1, len(codepipeline_jobs)), 2
        ),
        "poll_invocations_timed_out": timeouts[f"{deployment.outputs['name_prefix']}-poll"],
    }


def _summary(values: list[float | int | None]) -> dict[str, float] | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return {"mean": round(statistics.fmean(known), 2), "max": round(max(known), 2)}


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value['mean']:g} (max {value['max']:g})" if value["mean"] != value["max"] else f"{value['mean']:g}"
    return "-" if value is None else str(value)


ROWS = (
    ("jobs", "jobs started at once"),
    ("succeeded", "succeeded"),
    ("executions_per_job", "executions per job"),
    ("final_answers_per_job", "final answers per job"),
    ("instances_left_running", "instances left running"),
    ("event_to_command_start_seconds", "STARTED event -> command start (s)"),
    ("command_end_to_reported_seconds", "command end -> job answered (s)"),
    ("state_transitions_per_job", "state transitions per job"),
    ("ssm_registration_checks_per_job", "  of which SSM registration checks"),
    ("lambda_invocations_per_job", "Lambda invocations per job"),
    ("api_requests_per_job", "AWS API requests per job"),
    ("acknowledgements_per_codepipeline_job", "AcknowledgeJob calls per CodePipeline job"),
    ("poll_invocations_timed_out", "poll invocations timed out"),
    ("wall_seconds", "wall time of the scenario (s)"),
)


def print_table(results: list[dict[str, Any]]) -> None:
    width = max(len(label) for _, label in ROWS)
    columns = [result["scenario"] for result in results]
    col = max(24, *(len(c) for c in columns))
    print(f"{'':{width}}  " + "  ".join(f"{c:>{col}}" for c in columns))
    for key, label in ROWS:
        print(f"{label:{width}}  " + "  ".join(f"{_cell(r[key]):>{col}}" for r in results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent-jobs", type=int, default=50)
    parser.add_argument("--burst-jobs", type=int, default=100)
    parser.add_argument("--output", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args()

    cloud = server.start()  # its overrides count the requests (emulator.metrics)
    scale = os.environ["LOCALCLOUD_TIME_SCALE"]
    print(f"local cloud at {cloud.endpoint}; AWS-side waits scaled by {scale}; builds run in real time", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="ec2-action-bench-") as work:
            deployment = Deployment.apply(cloud, Path(work))
            results = []
            for name, seconds, jobs in (
                ("2 s build", 2, 1),
                ("30 s build", 30, 1),
                (f"{args.concurrent_jobs} jobs at once (2 s)", 2, args.concurrent_jobs),
                (f"burst of {args.burst_jobs} jobs (2 s)", 2, args.burst_jobs),
            ):
                print(f"running: {name} ...", flush=True)
                results.append(run_scenario(deployment, name, seconds, jobs))
            deployment.destroy()
    finally:
        cloud.stop()
    print()
    print_table(results)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    complete = all(r["succeeded"] == r["jobs"] and r["executions_per_job"] == [1] for r in results)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
