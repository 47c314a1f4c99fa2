"""The pipeline runner: a started CodePipeline execution runs in a daemon thread that calls the backends directly.

An ``AWS/Source/S3`` action copies its object into the artifact store, a ``Custom`` action queues a job and waits for
a final job result (or ``ACTION_TIMEOUT_SECONDS``). Action and pipeline state changes are emitted as EventBridge
events (``emulator.events.emit``).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

from moto.codepipeline.models import CodePipeline, CodePipelineBackend, PipelineExecution
from moto.core.utils import iso_8601_datetime_with_milliseconds, utcnow
from moto.s3.models import s3_backends

from emulator import clock, events
from emulator.codepipeline import models
from emulator.codepipeline.models import ActionRun, Artifact, Store

LOG = logging.getLogger("emulator.codepipeline")

# How long a Custom action may wait for a final job result, in AWS seconds (scaled by emulator.clock): 24 hours
# for custom actions (CodePipeline quotas). Tests lower it.
ACTION_TIMEOUT_SECONDS: float = 24 * 3600

_EVENT_STATES = {"InProgress": "STARTED", "Succeeded": "SUCCEEDED", "Failed": "FAILED", "Abandoned": "ABANDONED"}


# ---------------------------------------------------------------------------------------------------------------------
# The pipeline runner


class _StoreClosed(Exception):
    """The backend was reset or stop() was called: the runner leaves without a trace."""


class PipelineRunner(threading.Thread):
    def __init__(self, cp_backend: CodePipelineBackend, pipeline: CodePipeline, execution: PipelineExecution) -> None:
        super().__init__(name=f"codepipeline-{execution.pipeline_execution_id[:8]}", daemon=True)
        self.backend = cp_backend
        self.store: Store = models.store(cp_backend)
        self.definition = copy.deepcopy(pipeline.pipeline)
        self.pipeline_name: str = self.definition["name"]
        self.pipeline_arn = pipeline.metadata["pipelineArn"]
        self.execution = execution
        self.execution.artifact_revisions = []
        self.artifact_store = models.artifact_store(cp_backend, self.definition)
        self.artifacts: dict[str, Artifact] = {}

    def run(self) -> None:
        try:
            self._emit("CodePipeline Pipeline Execution State Change", {"state": "STARTED"})
            self._finish(*self._run_guarded())
        except _StoreClosed:
            LOG.debug("pipeline runner %s left: backend reset or stopped", self.name)

    def _run_guarded(self) -> tuple[str, str | None]:
        try:
            return self._run_stages()
        except _StoreClosed:
            raise
        except Exception as error:
            LOG.exception("pipeline %s execution %s crashed", self.pipeline_name, self.execution.pipeline_execution_id)
            return "Failed", f"Local cloud error: {error!r}"

    # -- stages ---------------------------------------------------------------------------------------------------

    def _run_stages(self) -> tuple[str, str | None]:
        for stage in self.definition["stages"]:
            stop_request = self._stop_request()
            if stop_request is not None:
                return "Stopped", stop_request.reason
            self._set_stage(stage["name"], "InProgress")
            outcome = self._run_stage(stage)
            self._set_stage(stage["name"], outcome[0] if outcome else "Succeeded")
            if outcome:
                return outcome
        return "Succeeded", None

    def _run_stage(self, stage: dict[str, Any]) -> tuple[str, str | None] | None:
        """None when every action succeeded, else the execution's final (status, summary)."""
        for order in sorted({action.get("runOrder", 1) for action in stage["actions"]}):
            group = [a for a in stage["actions"] if a.get("runOrder", 1) == order]
            runs = [self._start_action(stage["name"], action) for action in group]
            for run in runs:
                self._await(run)
            failed = [run for run in runs if run.status == "Failed"]
            if failed:
                message = (failed[0].error_details or {}).get("message", "")
                return "Failed", f"Action {failed[0].name} in stage {stage['name']} failed: {message}"[:2048]
            stop_request = self._stop_request()
            if stop_request is not None:
                return "Stopped", stop_request.reason
        return None

    def _set_stage(self, stage_name: str, status: str) -> None:
        with self.store.changed:
            self._check_open()
            stages = self.store.stage_states.setdefault(self.pipeline_name, {})
            stages[stage_name] = {"pipelineExecutionId": self.execution.pipeline_execution_id, "status": status}

    def _stop_request(self) -> models.StopRequest | None:
        with self.store.changed:
            self._check_open()
            return self.store.stop_requests.get(self.execution.pipeline_execution_id)

    def _check_open(self) -> None:
        if self.store.closed:
            raise _StoreClosed

    def _finish(self, status: str, summary: str | None) -> None:
        with self.store.changed:
            self._check_open()
            self.execution.status = status
            self.execution.status_summary = summary
            self.execution.last_update_time = utcnow()
            self.store.stop_requests.pop(self.execution.pipeline_execution_id, None)
        self._emit("CodePipeline Pipeline Execution State Change", {"state": status.upper()})

    # -- actions --------------------------------------------------------------------------------------------------

    def _start_action(self, stage_name: str, declaration: dict[str, Any]) -> ActionRun:
        type_id = declaration["actionTypeId"]
        key = (type_id.get("category"), type_id.get("provider"), type_id.get("version"))
        action_type = self.store.action_types.get(key) if type_id.get("owner") == "Custom" else None
        missing = [a["name"] for a in declaration.get("inputArtifacts", []) if a["name"] not in self.artifacts]
        run = ActionRun(
            pipeline_name=self.pipeline_name,
            pipeline_version=self.definition["version"],
            execution_id=self.execution.pipeline_execution_id,
            stage=stage_name,
            declaration=declaration,
            action_type=action_type,
            pipeline_arn=self.pipeline_arn,
            encryption_key=self.artifact_store.get("encryptionKey"),
            inputs=[
                self.artifacts[a["name"]] for a in declaration.get("inputArtifacts", []) if a["name"] not in missing
            ],
            outputs=[self._new_artifact(a["name"]) for a in declaration.get("outputArtifacts", [])],
        )
        with self.store.changed:
            self._check_open()
            self.store.action_states.setdefault(self.pipeline_name, {})[(stage_name, run.name)] = run
        if missing:
            self._fail(run, f"Input artifacts {', '.join(missing)} were not produced by an earlier action")
        elif type_id == {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}:
            self._emit_action(run)
            self._run_s3_source(run)
        elif action_type is not None:
            models.queue_job(self.backend, run)  # before the event, so a poller woken by it finds the job
            self._emit_action(run)
        elif type_id.get("owner") == "Custom":
            # The pipeline was saved while the type existed (CreatePipeline checks) and the type was deleted since:
            # the action fails at once, no job is queued, and so on every run until the pipeline is changed.
            self._fail(run, models.not_available(type_id))
        else:
            self._fail(run, f"The local cloud cannot run {models.describe_type_id(type_id)} actions")
        return run

    def _new_artifact(self, name: str) -> Artifact:
        # The layout CodePipeline uses: <pipeline name, 20 chars>/<artifact name, 10 chars>/<7 random chars>
        key = f"{self.pipeline_name[:20]}/{name[:10]}/{models.random_string(7)}"
        return Artifact(name=name, bucket=self.artifact_store.get("location", ""), key=key)

    def _fail(self, run: ActionRun, message: str) -> None:
        with self.store.changed:
            run.finish("Failed", summary=message, error=("JobFailed", message))

    def _run_s3_source(self, run: ActionRun) -> None:
        bucket, key = run.configuration.get("S3Bucket"), run.configuration.get("S3ObjectKey")
        s3 = s3_backends[self.backend.account_id][self.backend.partition]
        try:
            source = s3.get_object(bucket, key)
        except Exception as error:
            source, message = None, f"Could not read s3://{bucket}/{key}: {error!r}"
        else:
            message = f"The object s3://{bucket}/{key} does not exist"
        if source is None:
            self._fail(run, message)
            return
        revision = source.version_id if source.version_id != "null" else source.etag.strip('"')
        encryption_key = self.artifact_store.get("encryptionKey")
        for artifact in run.outputs:
            s3.put_object(
                artifact.bucket,
                artifact.key,
                source.value,
                encryption="aws:kms" if encryption_key else None,
                kms_key_id=encryption_key["id"] if encryption_key else None,
            )
            artifact.revision = revision
            self.execution.artifact_revisions.append(
                {"name": artifact.name, "revisionId": revision, "revisionSummary": f"s3://{bucket}/{key}"}
            )
        with self.store.changed:
            run.external_execution_id = revision
            run.finish("Succeeded", summary=f"Amazon S3 object s3://{bucket}/{key}, revision {revision}")

    def _await(self, run: ActionRun) -> None:
        deadline = run.started + clock.real_seconds(ACTION_TIMEOUT_SECONDS)
        with self.store.changed:
            while run.status == "InProgress":
                self._check_open()
                stop_request = self.store.stop_requests.get(self.execution.pipeline_execution_id)
                remaining = deadline - time.time()
                if stop_request is not None and stop_request.abandon:
                    self._close_jobs(run, "Failed")  # CodePipeline takes no more results for it
                    run.finish("Abandoned", summary=stop_request.reason)
                elif remaining <= 0:
                    self._close_jobs(run, "TimedOut")
                    message = f"The action timed out: no final job result within {ACTION_TIMEOUT_SECONDS:g} seconds"
                    run.finish("Failed", summary=message, error=("JobFailed", message))
                else:
                    self.store.changed.wait(min(remaining, models.WAIT_SLICE))
        if run.status == "Succeeded":
            self.artifacts.update({artifact.name: artifact for artifact in run.outputs})
        self._emit_action(run)

    @staticmethod
    def _close_jobs(run: ActionRun, status: str) -> None:
        for job in run.jobs:
            if job.status in ("Queued", "Dispatched", "InProgress"):
                job.status = status

    # -- events ---------------------------------------------------------------------------------------------------

    def _emit_action(self, run: ActionRun) -> None:
        type_id = run.type_id
        detail: dict[str, Any] = {
            "stage": run.stage,
            "action-execution-id": run.id,
            "action": run.name,
            "state": _EVENT_STATES[run.status],
            "region": self.backend.region_name,
            "type": {k: type_id[k] for k in ("owner", "provider", "category", "version")},
        }
        if run.status == "InProgress" and run.inputs:
            detail["input-artifacts"] = [artifact.to_event_dict() for artifact in run.inputs]
        if run.status == "Succeeded" and run.outputs:
            detail["output-artifacts"] = [artifact.to_event_dict() for artifact in run.outputs]
        if run.status in ("Succeeded", "Failed"):
            detail["execution-result"] = self._execution_result(run)
        self._emit("CodePipeline Action Execution State Change", detail)

    @staticmethod
    def _execution_result(run: ActionRun) -> dict[str, str]:
        result = {
            "external-execution-id": run.external_execution_id,
            "external-execution-summary": run.summary,
            "external-execution-url": run.external_execution_url(),
            "error-code": (run.error_details or {}).get("code"),
        }
        return {k: v for k, v in result.items() if v is not None}

    def _emit(self, detail_type: str, detail: dict[str, Any]) -> None:
        common = {
            "pipeline": self.pipeline_name,
            "execution-id": self.execution.pipeline_execution_id,
            "start-time": iso_8601_datetime_with_milliseconds(self.execution.start_time),
            "version": float(self.definition["version"]),
            "pipeline-execution-attempt": 1.0,
        }
        events.emit(
            "aws.codepipeline",
            detail_type,
            common | detail,
            account=self.backend.account_id,
            region=self.backend.region_name,
            resources=[self.pipeline_arn],
        )
