"""CodePipeline in the emulator: custom action types, the job protocol, and pipelines that really run.

- ``models``: the backend behaviour added to moto's ``CodePipelineBackend`` (action types, jobs, pipeline state) and
  its state (one ``Store`` per backend);
- ``responses``: the wire format of the operations added to moto's ``CodePipelineResponse``;
- ``exceptions``: CodePipeline's errors that moto does not define;
- ``runner``: the thread that runs a started pipeline execution.

``emulator.patches`` installs them into moto. What tests and the harness read: ``backend()``, ``jobs()``,
``results()``, ``wait_for_execution()``, and ``stop()`` to end every runner thread.
"""

from __future__ import annotations

import time

from moto.codepipeline.models import CodePipelineBackend, PipelineExecution, codepipeline_backends
from moto.core import DEFAULT_ACCOUNT_ID

from emulator.codepipeline import models
from emulator.codepipeline.models import Job, JobResult

__all__ = ["Job", "JobResult", "backend", "jobs", "results", "stop", "wait_for_execution"]


def backend(account_id: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> CodePipelineBackend:
    return codepipeline_backends[account_id][region]


def jobs(account_id: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> list[Job]:
    """Every job ever created, oldest first."""
    state = models.store(backend(account_id, region))
    with state.changed:
        return list(state.jobs.values())


def results(
    account_id: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1", job_id: str | None = None
) -> list[JobResult]:
    """Every Put*Result CodePipeline accepted, oldest first (only those of ``job_id`` if given)."""
    state = models.store(backend(account_id, region))
    with state.changed:
        return [r for r in state.results if job_id is None or r.job_id == job_id]


def wait_for_execution(
    pipeline_name: str,
    execution_id: str,
    account_id: str = DEFAULT_ACCOUNT_ID,
    region: str = "us-east-1",
    timeout: float = 30.0,
) -> PipelineExecution:
    """Block until the execution is Succeeded, Failed or Stopped; TimeoutError otherwise."""
    cp_backend = backend(account_id, region)
    deadline = time.monotonic() + timeout
    while True:
        execution = cp_backend.get_pipeline_execution(pipeline_name, execution_id)
        if execution.status in models.FINAL_EXECUTION_STATUSES:
            return execution
        if time.monotonic() > deadline:
            raise TimeoutError(f"Execution {execution_id} of {pipeline_name} is still {execution.status}")
        time.sleep(0.02)


def stop() -> None:
    """End every pipeline runner thread (they exit without changing the executions any further)."""
    for account in list(codepipeline_backends.values()):
        for cp_backend in list(account.values()):
            models.store(cp_backend).close()
