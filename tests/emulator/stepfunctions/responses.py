"""Wire format of the Step Functions operations the emulator adds or corrects (methods of moto's
``StepFunctionResponse``, installed by ``emulator.patches``)."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from emulator.stepfunctions.models import validate_definition


def send_task_failure(self: Any) -> Any:
    """moto's SendTaskFailure drops the cause."""
    token, error, cause = (self._get_param(name) for name in ("taskToken", "error", "cause"))
    self.stepfunction_backend.send_task_failure(token, error=error, cause=cause)
    return EmptyResult()


def validate_state_machine_definition(self: Any) -> Any:
    diagnostics = validate_definition(self._get_param("definition"))
    if self._get_param("severity", "ERROR") == "ERROR":
        diagnostics = [d for d in diagnostics if d["severity"] == "ERROR"]
    max_results = self._get_int_param("maxResults") or 100
    return ActionResult(
        {
            "result": "FAIL" if any(d["severity"] == "ERROR" for d in diagnostics) else "OK",
            "diagnostics": diagnostics[:max_results],
            "truncated": len(diagnostics) > max_results,
        }
    )


def list_state_machine_versions(self: Any) -> Any:
    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    versions = sorted(machine.versions.values(), key=lambda version: version.version, reverse=True)
    items = [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]
    return ActionResult({"stateMachineVersions": items})
