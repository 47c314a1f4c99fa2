"""`make demo`: apply examples/basic-linux into the local cloud with a warm pool, run its pipeline twice and show what
happened: the first job finds the pool empty and boots an instance (cold), the second takes that instance as the
first job returned it, running and Online (warm). Both timelines are printed, each followed by the CloudWatch
metrics the functions wrote meanwhile (name, dimensions, value), then the two jobs side by side.

Exits 0 when both pipeline executions succeeded. Everything it creates lives in a temporary directory and in the
local cloud's memory, and is destroyed before it exits.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LOCALCLOUD_TIME_SCALE", "0.1")

from emulator import server
from harness import job_metrics, timeline
from harness.deployment import EXAMPLE, LIVE_STATES, Deployment, PipelineRun, zip_tree

SOURCE_DIR = EXAMPLE / "source"


def say(started: float, message: str) -> None:
    print(f"[{time.time() - started:6.1f}s] {message}", flush=True)


# A warm pool that starts empty (so the first job boots), keeps what it grew for 10 idle minutes, at most 2 instances.
DEMO_VARIABLES = {"capacity_strategy": "warm", "pool_min_ready": 0, "max_concurrent_builds": 2}


def read_metrics(deployment: Deployment, run: PipelineRun) -> list[str]:
    """The stack's CloudWatch metrics from the job's start until report's line became a metric, as printable lines
    (taken when the job ends, before the next job starts)."""
    window = job_metrics.JobWindow(deployment, run.started)
    job_metrics.report_documents(window, run.jobs[0].id)  # until report's line is in the logs
    window.until = time.time()
    lines = [f"CloudWatch metrics ({job_metrics.describe(window)}):"]
    for name, dimensions, stat in job_metrics.rows(window):
        value = f"{stat.total:g}" if stat.samples == 1 else f"{stat.total:g} over {stat.samples:g} data points"
        lines.append(f"  {name:<22} {dimensions or '-':<50} {value}")
    return lines


def show_run(deployment: Deployment, run: PipelineRun, title: str, metrics: list[str]) -> None:
    print(f"\n=== {title}\nTimeline of the job (seconds after the pipeline started):")
    for moment in timeline.moments(deployment, run):
        print(f"  +{moment.at - run.started:7.2f}s  {moment.what}")
    print()
    print("\n".join(metrics))

    invocation = timeline.command_invocation(deployment, run)
    if invocation:
        print(f"\nBuild output (SSM command {invocation['CommandId']}, status {invocation['Status']}):")
        for plugin in invocation.get("CommandPlugins", []):
            text = (plugin.get("Output") or "").rstrip()
            if text and "skipped" not in text:
                print("\n".join(f"  | {line}" for line in text.splitlines()))

    final = run.final_result
    if final is not None:
        answer = final.summary if final.kind == "success" else f"{final.failure_type}: {final.message}"
        print(f"\nCodePipeline was told: {final.kind}\n  {answer}")

    if run.status == "Succeeded" and run.jobs[0].data.get("outputArtifacts"):
        print("\nOutput artifact contents:")
        for name, content in sorted(deployment.read_output_artifact(run).items()):
            preview = content.decode(errors="replace").strip().replace("\n", "\n      ")
            print(f"  {name}:\n      {preview}")

    states = {instance["InstanceId"]: instance["State"]["Name"] for instance in run.instances}
    print(f"\nBuilder instances: {states or 'none'}")
    print(f"Pipeline execution {run.execution_id}: {run.status}")


def compare(deployment: Deployment, runs: list[tuple[str, PipelineRun]]) -> None:
    """The two jobs side by side: how the instance became available and how long the job waited for it."""
    print("\n=== Cold and warm, side by side")
    width = max(len(title) for title, _ in runs)
    print(f"  {'job':<{width}}  {'instance':<20}  {'how':<6}  {'STARTED event -> command start':>30}")
    for title, run in runs:
        figures = timeline.figures(deployment, run, 0)
        instance = run.instances[-1]["InstanceId"] if run.instances else "-"
        waited = f"{figures.event_to_command_start:.2f} s" if figures.event_to_command_start is not None else "-"
        print(f"  {title:<{width}}  {instance:<20}  {figures.boot or '-':<6}  {waited:>30}")
    print(
        "  (AWS-side waits are scaled by LOCALCLOUD_TIME_SCALE: a launch's boot and SSM registration take 20 s of AWS"
        " time here; a warm instance skips both.)"
    )


def main() -> int:
    started = time.time()
    cloud = server.start()
    say(started, f"local cloud at {cloud.endpoint} (AWS waits scaled by {os.environ['LOCALCLOUD_TIME_SCALE']})")
    with tempfile.TemporaryDirectory(prefix="ec2-action-demo-") as work:
        try:
            say(started, f"terraform apply examples/{EXAMPLE.name} (capacity_strategy = warm)")
            deployment = Deployment.apply(cloud, Path(work), variables=DEMO_VARIABLES)
            say(started, f"applied: {len(deployment.terraform.resources())} resources")
            pipeline = deployment.outputs["pipeline_name"]
            runs, metrics = [], []
            for title in ("job 1: the pool is empty (cold)", "job 2: the pool has a ready instance (warm)"):
                deployment.upload_source(pipeline, zip_tree(SOURCE_DIR))  # with its modes: build.sh stays executable
                run_started = time.time()
                execution_id = deployment.start(pipeline)
                say(started, f"{title}: pipeline {pipeline} started, execution {execution_id}")
                run = deployment.wait(pipeline, execution_id, run_started)
                say(started, f"pipeline execution ended: {run.status}")
                runs.append((title, run))
                metrics.append(read_metrics(deployment, run))
            for (title, run), lines in zip(runs, metrics, strict=True):
                show_run(deployment, run, title, lines)
            compare(deployment, runs)
            say(started, "terraform destroy")
            deployment.destroy()
            live = [i["InstanceId"] for i in deployment.instances() if i["State"]["Name"] in LIVE_STATES]
            say(started, f"destroyed; instances of the stack still live: {live or 'none'}; done")
            return 0 if all(run.status == "Succeeded" for _, run in runs) and not live else 1
        finally:
            cloud.stop()


if __name__ == "__main__":
    sys.exit(main())
