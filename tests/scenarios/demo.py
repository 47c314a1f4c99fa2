"""`make demo`: apply examples/basic-linux into the local cloud, run its pipeline once and show what happened.

Exits 0 when the pipeline execution succeeded. Everything it creates lives in a temporary directory and in the
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
from harness import timeline
from harness.deployment import EXAMPLE, Deployment, PipelineRun, zip_tree

SOURCE_DIR = EXAMPLE / "source"


def say(started: float, message: str) -> None:
    print(f"[{time.time() - started:6.1f}s] {message}", flush=True)


def show_run(deployment: Deployment, run: PipelineRun) -> None:
    print("\nTimeline of the job (seconds after the pipeline started):")
    for moment in timeline.moments(deployment, run):
        print(f"  +{moment.at - run.started:7.2f}s  {moment.what}")

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


def main() -> int:
    started = time.time()
    cloud = server.start()
    say(started, f"local cloud at {cloud.endpoint} (AWS waits scaled by {os.environ['LOCALCLOUD_TIME_SCALE']})")
    with tempfile.TemporaryDirectory(prefix="ec2-action-demo-") as work:
        try:
            say(started, f"terraform apply examples/{EXAMPLE.name}")
            deployment = Deployment.apply(cloud, Path(work))
            say(started, f"applied: {len(deployment.terraform.resources())} resources")
            pipeline = deployment.outputs["pipeline_name"]
            deployment.upload_source(pipeline, zip_tree(SOURCE_DIR))  # with its modes: build.sh stays executable
            say(started, f"uploaded the sample source to s3://{deployment.outputs['source_bucket']}")
            run_started = time.time()
            execution_id = deployment.start(pipeline)
            say(started, f"pipeline {pipeline} started: execution {execution_id}")
            run = deployment.wait(pipeline, execution_id, run_started)
            say(started, f"pipeline execution ended: {run.status}")
            show_run(deployment, run)
            say(started, "terraform destroy")
            deployment.destroy()
            say(started, "destroyed; done")
            return 0 if run.status == "Succeeded" else 1
        finally:
            cloud.stop()


if __name__ == "__main__":
    sys.exit(main())
