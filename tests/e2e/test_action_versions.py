"""Moving an action to a new version, in the local cloud: the old version keeps serving the pipelines pinned to it
while it is listed in previous_versions, pipelines that take the module's current version move to the new one, and
removing the old version deletes only it.

A stack of its own (prefix, provider, VPC), applied three times: version 1; versions 2 and 1; version 2 only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from emulator.server import LocalCloud
from harness.deployment import EXAMPLE, Deployment, PipelineRun, unique_name
from harness.terraform import TerraformRoot

pytestmark = pytest.mark.e2e

STACK = {"name_prefix": "ec2-build-versions", "vpc_cidr_block": "10.44.0.0/16", "action_provider": "EC2-Linux-Versions"}
# The example pipeline runs `bash build.sh` and keeps dist/ as its output artifact.
EXAMPLE_SOURCE = {"build.sh": 'mkdir -p dist\necho "built by job $JobId" > dist/out.txt\n'}
PINNED_SOURCE = {"README.md": "pinned to version 1\n"}


def version_of(run: PipelineRun) -> str:
    """The action type version the run's build job was for."""
    assert run.jobs, f"{run.pipeline_name}: no job was queued ({run.status})"
    return run.jobs[0].data["actionTypeId"]["version"]


def succeeded_on(run: PipelineRun, version: str) -> None:
    assert run.status == "Succeeded", (run.pipeline_name, run.status, run.final_result)
    assert version_of(run) == version
    assert len(run.state_machine_executions) == 1
    assert run.live_instances == []


def registered_versions(deployment: Deployment) -> list[str]:
    types = deployment.client("codepipeline").list_action_types(actionOwnerFilter="Custom")["actionTypes"]
    return sorted(t["id"]["version"] for t in types if t["id"]["provider"] == STACK["action_provider"])


def test_pinned_pipelines_keep_running_until_their_version_is_removed(local_cloud: LocalCloud, tmp_path: Path) -> None:
    root = TerraformRoot(EXAMPLE, tmp_path, env=local_cloud.env())
    variables = {"region": local_cloud.region, **STACK}

    def apply(version: str, previous_versions: list[str]) -> Deployment:
        root.apply({**variables, "action_version": version, "action_previous_versions": json.dumps(previous_versions)})
        return Deployment(local_cloud, root, root.outputs())

    root.init()
    try:
        # Version 1, and a pipeline pinned to it (created outside Terraform, as a user's other pipelines would be).
        deployment = apply("1", [])
        pinned = deployment.create_pipeline(unique_name("pinned"), {"Command": "cat README.md"}, output_artifact=False)
        succeeded_on(deployment.run(pinned, PINNED_SOURCE), "1")

        # Version 2 beside 1: the example's pipeline takes the module's current version, the pinned one stays on 1.
        deployment = apply("2", ["1"])
        assert [t["version"] for t in deployment.outputs["served_action_type_ids"]] == ["2", "1"]
        assert registered_versions(deployment) == ["1", "2"]
        follower = deployment.outputs["pipeline_name"]
        deployment.upload_source(pinned, PINNED_SOURCE)
        deployment.upload_source(follower, EXAMPLE_SOURCE)
        started = time.time()
        executions = {name: deployment.start(name) for name in (pinned, follower)}  # both versions' jobs at once
        runs = {name: deployment.wait(name, execution, started) for name, execution in executions.items()}
        succeeded_on(runs[pinned], "1")
        succeeded_on(runs[follower], "2")

        # Version 2 only: version 1 is deleted; version 2 keeps running, the pipeline pinned to 1 fails at its action.
        deployment = apply("2", [])
        assert registered_versions(deployment) == ["2"]
        succeeded_on(deployment.run(follower, EXAMPLE_SOURCE), "2")
        orphaned = deployment.run(pinned, PINNED_SOURCE)
        assert orphaned.status == "Failed"
        assert orphaned.jobs == [] and orphaned.state_machine_executions == []
        execution = deployment.client("codepipeline").get_pipeline_execution(
            pipelineName=pinned, pipelineExecutionId=orphaned.execution_id
        )["pipelineExecution"]
        assert f"Provider: '{STACK['action_provider']}', Version: '1') is not available" in execution["statusSummary"]
    finally:
        root.destroy({**variables, "action_version": "2"})
