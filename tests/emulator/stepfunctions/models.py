"""Step Functions in the local cloud: moto's ASL interpreter (execute_state_machine), made faithful where we need it.

- JSONPath: a definite path (`$.Instances[0].InstanceId`) yields the scalar, an indefinite one (`[*]`, `..`, filters,
  slices) a list.
- AWS time (Wait states, Retry intervals, TimeoutSeconds/TimeoutSecondsPath, HeartbeatSeconds) runs at clock.scale();
  the execution history keeps the AWS values.
- A task token is closed once its task ends (success, failure, timeout): SendTaskSuccess/Failure/Heartbeat on it
  answer TaskTimedOut, as AWS does; SendTaskFailure keeps its cause.
- aws-sdk integrations get the API's member casing (from botocore's operation model) both ways.
- ValidateStateMachineDefinition and ListStateMachineVersions (both called by Terraform's aws_sfn_state_machine);
  CreateStateMachine/UpdateStateMachine reject definitions whose transitions name missing states.
- `transitions(execution_arn)`: billed state transitions of an execution, from its history.
"""

from __future__ import annotations

import json
import re
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

from localcloud import clock

_INDEFINITE_PATH = re.compile(r"\[\s*(\*|\?)|\[[^\]'\"]*[:,][^\]'\"]*\]|\.\.|\.\*")


# ---------------------------------------------------------------------------------------------------------------------
# JSONPath
# ---------------------------------------------------------------------------------------------------------------------


def extract_json(path: str, data: Any) -> Any:
    """AWS's reading of a Path field: the value for a definite path, a list for an indefinite one."""
    from jsonpath_ng.ext import parse
    from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError

    matches = parse(path).find(data)
    indefinite = bool(_INDEFINITE_PATH.search(path))
    if indefinite:
        return [match.value for match in matches]
    if not matches:
        raise NoSuchJsonPathError(json_path=path, data=data)
    return matches[0].value


def _install_json_path() -> None:
    import sys

    import moto.stepfunctions.parser.asl.utils.json_path as json_path_module
    import moto.stepfunctions.parser.models  # noqa: F401 (imports every module that uses extract_json)

    original = json_path_module.extract_json
    for module in list(sys.modules.values()):
        if getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------------------
# AWS time
# ---------------------------------------------------------------------------------------------------------------------


class AwsTimeEvent(threading.Event):
    """An Event whose wait timeout is in AWS seconds (used by the interpreter's task timeout and callback waits)."""

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(None if timeout is None else clock.real_seconds(timeout))


def _wait_state_body(self: Any, env: Any) -> None:
    """WaitFunction._eval_body: wait the state's seconds in AWS time; stop early if the execution stops."""
    deadline = time.monotonic() + clock.real_seconds(self._get_wait_seconds(env=env))
    while env.is_running() and (remaining := deadline - time.monotonic()) > 0:
        if env.program_state_event.wait(remaining):
            time.sleep(min(remaining, 0.01))  # an unrelated state change: keep waiting without spinning


def _install_time() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.callback import callback

    retrier_decl.time = types.SimpleNamespace(sleep=clock.sleep)  # type: ignore[attr-defined]
    execute_state.threading = types.SimpleNamespace(Event=AwsTimeEvent)  # type: ignore[attr-defined]
    callback.Event = AwsTimeEvent  # type: ignore[attr-defined,misc]
    WaitFunction._eval_body = _wait_state_body  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------------------------------
# Task tokens
# ---------------------------------------------------------------------------------------------------------------------


def _all_executions(backend: Any) -> Iterator[Any]:
    for machine in backend.state_machines:
        for execution in machine.executions:
            if execution.exec_worker is not None:
                yield execution


def _deliver(backend: Any, token: str, deliver: Any) -> None:
    """Find the execution holding `token` and apply deliver(pool) to it; AWS's errors for closed or unknown tokens."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackNotifyConsumerError

    for execution in _all_executions(backend):
        pool = execution.exec_worker.env.callback_pool_manager
        if pool.get(token) is None:
            continue
        try:
            if deliver(pool):
                return
        except CallbackNotifyConsumerError:
            pass
        raise AWSError("Task Timed Out: 'Provided task does not exist anymore'", "TaskTimedOut")
    raise AWSError("Invalid Token: 'Invalid token'", "InvalidToken")


def _send_task_success(self: Any, task_token: str, outcome: str) -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

    result = CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
    _deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))


def _send_task_failure(self: Any, task_token: str, error: str | None = None, cause: str | None = None) -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

    result = CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
    _deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))


def _send_task_heartbeat(self: Any, task_token: str) -> None:
    _deliver(self, task_token, lambda pool: pool.heartbeat(callback_id=task_token))


def _close_on_interrupt(original: Any) -> Any:
    """CallbackEndpoint.interrupt_all runs when the task ends: from then on the token is closed."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerLeft

    def interrupt_all(self: Any) -> None:
        if self.consumer_error is None:
            self.consumer_error = CallbackConsumerLeft()
        original(self)

    return interrupt_all


def _send_task_failure_response(self: Any) -> Any:
    """moto's SendTaskFailure drops the cause."""
    from moto.core.responses import EmptyResult

    token, error, cause = (self._get_param(name) for name in ("taskToken", "error", "cause"))
    self.stepfunction_backend.send_task_failure(token, error=error, cause=cause)
    return EmptyResult()


def _install_tokens() -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    StepFunctionsParserBackend.send_task_success = _send_task_success  # type: ignore[method-assign,assignment]
    StepFunctionsParserBackend.send_task_failure = _send_task_failure  # type: ignore[method-assign,assignment]
    StepFunctionsParserBackend.send_task_heartbeat = _send_task_heartbeat  # type: ignore[method-assign,assignment]
    if not getattr(CallbackEndpoint.interrupt_all, "_localcloud", False):
        CallbackEndpoint.interrupt_all = _close_on_interrupt(CallbackEndpoint.interrupt_all)  # type: ignore[method-assign]
        CallbackEndpoint.interrupt_all._localcloud = True  # type: ignore[attr-defined]
    StepFunctionResponse.send_task_failure = _send_task_failure_response  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------------------------------
# aws-sdk integration casing
# ---------------------------------------------------------------------------------------------------------------------


def _operation_model(task: Any, service: str | None, action: str | None) -> Any:
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(task._get_boto_service_name(service))
    snake = task._get_boto_service_action(action)
    name = next(op for op in model.operation_names if xform_name(op) == snake)
    return model.operation_model(name)


def _normalise_parameters(self: Any, parameters: dict, service: str | None = None, action: str | None = None) -> None:
    shape = _operation_model(self, service, action).input_shape
    if shape is not None:
        self._to_boto_request(parameters, shape)


def _normalise_response(self: Any, response: Any, service: str | None = None, action: str | None = None) -> None:
    shape = _operation_model(self, service, action).output_shape
    if shape is not None:
        self._from_boto_response(response, shape)


def _install_aws_sdk_casing() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    StateTaskServiceAwsSdk._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]
    StateTaskServiceAwsSdk._normalise_response = _normalise_response  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------------------------------
# Definition validation
# ---------------------------------------------------------------------------------------------------------------------


def _diagnostic(code: str, message: str, location: str) -> dict[str, str]:
    return {"severity": "ERROR", "code": code, "message": message, "location": location}


def _missing(target: Any, location: str) -> dict[str, str]:
    field = location.rsplit("/", 1)[-1]
    return _diagnostic("MISSING_TRANSITION_TARGET", f"Missing '{field}' target: {target}", location)


def _transitions(state: dict[str, Any], at: str) -> Iterator[tuple[str, str]]:
    """(target state, location) of every transition out of a state."""
    for key in ("Next", "Default"):
        if isinstance(state.get(key), str):
            yield state[key], f"{at}/{key}"
    for key in ("Choices", "Catch"):
        for index, rule in enumerate(state.get(key) or []):
            if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
                yield rule["Next"], f"{at}/{key}/{index}/Next"


def _nested_machines(state: dict[str, Any], at: str) -> Iterator[tuple[dict[str, Any], str]]:
    for index, branch in enumerate(state.get("Branches") or []):
        yield branch, f"{at}/Branches/{index}"
    for key in ("ItemProcessor", "Iterator"):
        if isinstance(state.get(key), dict):
            yield state[key], f"{at}/{key}"


def graph_diagnostics(machine: dict[str, Any], at: str = "") -> list[dict[str, str]]:
    """Transitions to missing states and unreachable states, in this machine and its branches and item processors."""
    states: dict[str, Any] = machine.get("States") or {}
    start = machine.get("StartAt")
    diagnostics = []
    if start not in states:
        diagnostics.append(
            _diagnostic("MISSING_TRANSITION_TARGET", f"Missing 'StartAt' target: {start}", f"{at}/StartAt")
        )
    edges: dict[str, list[str]] = {}
    for name, state in states.items():
        state_at = f"{at}/States/{name}"
        edges[name] = []
        for target, location in _transitions(state, state_at):
            edges[name].append(target)
            if target not in states:
                diagnostics.append(
                    _diagnostic("MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {target}", location)
                )
        for nested, nested_at in _nested_machines(state, state_at):
            diagnostics += graph_diagnostics(nested, nested_at)
    reachable, pending = set(), [start] if start in states else []
    while pending:
        name = pending.pop()
        if name not in reachable:
            reachable.add(name)
            pending += [target for target in edges[name] if target in states]
    for name in states:
        if name not in reachable:
            diagnostics.append(
                _diagnostic("UNREACHABLE_STATE", f"State {name} is not reachable", f"{at}/States/{name}")
            )
    return diagnostics


def validate_definition(definition: str) -> list[dict[str, str]]:
    """Diagnostics for a state machine definition: JSON, the ASL grammar, then the transition graph."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    try:
        machine = json.loads(definition)
    except ValueError as exc:
        return [_diagnostic("INVALID_JSON_DESCRIPTION", str(exc), "")]
    try:
        AmazonStateLanguageParser.parse(definition)
    except ASLParserException as exc:
        return [_diagnostic("SCHEMA_VALIDATION_FAILED", str(exc), "")]
    except Exception as exc:
        return [_diagnostic("SCHEMA_VALIDATION_FAILED", f"{type(exc).__name__}: {exc}", "")]
    if not isinstance(machine, dict):
        return [_diagnostic("SCHEMA_VALIDATION_FAILED", "The definition must be a JSON object", "")]
    return graph_diagnostics(machine)


def _validate_state_machine_definition(self: Any) -> Any:
    from moto.core.responses import ActionResult

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


def _list_state_machine_versions(self: Any) -> Any:
    from moto.core.responses import ActionResult

    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    versions = sorted(machine.versions.values(), key=lambda version: version.version, reverse=True)
    items = [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]
    return ActionResult({"stateMachineVersions": items})


def _check_definition(definition: str) -> None:
    """CreateStateMachine/UpdateStateMachine's check: grammar and transition graph, as AWS does."""
    from moto.core.exceptions import AWSError

    errors = [d for d in validate_definition(definition) if d["severity"] == "ERROR"]
    if errors:
        listed = "; ".join(f"{d['code']}: {d['message']} at {d['location']}" for d in errors)
        raise AWSError(f"Invalid State Machine Definition: '{listed}'", "InvalidDefinition")


def _install_validation() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    StepFunctionResponse.validate_state_machine_definition = _validate_state_machine_definition  # type: ignore[attr-defined]
    StepFunctionResponse.list_state_machine_versions = _list_state_machine_versions  # type: ignore[attr-defined]
    StepFunctionsParserBackend._validate_definition = staticmethod(_check_definition)  # type: ignore[method-assign,assignment]


# ---------------------------------------------------------------------------------------------------------------------
# Transitions
# ---------------------------------------------------------------------------------------------------------------------

_SCHEDULED = {"LambdaFunctionScheduled", "TaskScheduled", "ActivityScheduled"}


def _execution(execution_arn: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    region, account = execution_arn.split(":")[3:5]
    return stepfunctions_parser_backends[account][region].describe_execution(execution_arn)


def count_transitions(events: list[dict[str, Any]]) -> int:
    """State transitions as AWS bills them: every state entered, plus every retry of a task."""
    total, scheduled = 0, False
    for event in events:
        kind = getattr(event["type"], "value", event["type"])
        if kind.endswith("StateEntered"):
            total, scheduled = total + 1, False
        elif kind in _SCHEDULED:
            total += 1 if scheduled else 0
            scheduled = True
    return total


def transitions(execution_arn: str) -> int:
    """Billed state transitions of an execution run by the interpreter (so far, if it still runs)."""
    return count_transitions(_execution(execution_arn).to_history_output()["events"])


def install() -> None:
    _install_json_path()
    _install_time()
    _install_tokens()
    _install_aws_sdk_casing()
    _install_validation()
