"""Step Functions in the emulator (backend side): task tokens, definition checks, billed transitions.

- A task token is closed once its task ends (success, failure, timeout), and as soon as SendTaskSuccess/Failure
  was accepted for it (moto's interpreter would take a second answer until it consumed the first): a later
  SendTaskSuccess/Failure/Heartbeat on it answers TaskTimedOut, as AWS does; SendTaskFailure keeps its cause.
- ValidateStateMachineDefinition and ListStateMachineVersions (both called by Terraform's aws_sfn_state_machine);
  CreateStateMachine/UpdateStateMachine reject definitions whose transitions name missing states.
- `transitions(execution_arn)`: billed state transitions of an execution, from its history.

The interpreter's own fixes (JSONPath, AWS time, aws-sdk casing) are in ``interpreter``, the wire format of the added
operations in ``responses``.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

_answered_lock = threading.Lock()
_answered_tokens: set[str] = set()

# ---------------------------------------------------------------------------------------------------------------------
# Task tokens
# ---------------------------------------------------------------------------------------------------------------------


def _all_executions(backend: Any) -> Iterator[Any]:
    for machine in backend.state_machines:
        for execution in machine.executions:
            if execution.exec_worker is not None:
                yield execution


def _deliver(backend: Any, token: str, deliver: Any, answers: bool = True) -> None:
    """Find the execution holding `token` and apply deliver(pool) to it; AWS's errors for closed or unknown tokens.
    `answers`: a success or failure, after which the token is closed."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackNotifyConsumerError

    closed = AWSError("Task Timed Out: 'Provided task does not exist anymore'", "TaskTimedOut")
    for execution in _all_executions(backend):
        pool = execution.exec_worker.env.callback_pool_manager
        if pool.get(token) is None:
            continue
        with _answered_lock:
            if token in _answered_tokens:
                raise closed
            try:
                if deliver(pool):
                    if answers:
                        _answered_tokens.add(token)
                    return
            except CallbackNotifyConsumerError:
                pass
        raise closed
    raise AWSError("Invalid Token: 'Invalid token'", "InvalidToken")


def send_task_success(self: Any, task_token: str, outcome: str) -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

    result = CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
    _deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))


def send_task_failure(self: Any, task_token: str, error: str | None = None, cause: str | None = None) -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

    result = CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
    _deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))


def send_task_heartbeat(self: Any, task_token: str) -> None:
    _deliver(self, task_token, lambda pool: pool.heartbeat(callback_id=task_token), answers=False)


STOP_SETTLE_SECONDS = 5.0
# The histories (event managers) of stopped executions: from the stop on, only ExecutionAborted is recorded.
_stopped_histories: weakref.WeakSet[Any] = weakref.WeakSet()


def _close_tokens(execution: Any) -> None:
    """A stopped execution's open task tokens are closed (a later SendTask* answers TaskTimedOut, as AWS answers for
    an aborted execution's token) and the tasks waiting on them wake up, so that the execution is ABORTED now rather
    than at its task's timeout."""
    worker = execution.exec_worker
    if worker is None:
        return
    _stopped_histories.add(worker.env.event_manager)
    pool = worker.env.callback_pool_manager
    with _answered_lock:
        endpoints = list(pool._pool.values())  # CallbackPoolManager has no public way to list its endpoints
        for endpoint in endpoints:
            endpoint.interrupt_all()  # close_on_interrupt: marks the consumer gone, then wakes its waits


def stop_synchronously(original: Any) -> Any:
    """StopExecution closes the execution's task tokens and answers once the execution is ABORTED (bounded: a stuck
    worker cannot hang the caller)."""

    def stop_execution(self: Any, execution_arn: str) -> Any:
        execution = original(self, execution_arn)
        _close_tokens(execution)
        deadline = time.monotonic() + STOP_SETTLE_SECONDS
        while execution.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.005)
        return execution

    return stop_execution


def stopped_stays_stopped(original: Any) -> Any:
    """Environment.set_error: a task woken by the stop (its token closed) fails, but the execution stays ABORTED."""
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return
        original(self, error)

    return set_error


def nothing_after_the_stop(original: Any) -> Any:
    """EventManager.add_event: after StopExecution the history gains ExecutionAborted only (not the failure of the
    task the stop woke)."""
    from moto.stepfunctions.parser.api import HistoryEventType

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        if self in _stopped_histories and event_type != HistoryEventType.ExecutionAborted:
            return int(context.source_event_id)
        return int(original(self, context, event_type, *args, **kwargs))

    return add_event


def close_on_interrupt(original: Any) -> Any:
    """CallbackEndpoint.interrupt_all runs when the task ends: from then on the token is closed."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerLeft

    def interrupt_all(self: Any) -> None:
        if self.consumer_error is None:
            self.consumer_error = CallbackConsumerLeft()
        original(self)

    return interrupt_all


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


def check_definition(definition: str) -> None:
    """CreateStateMachine/UpdateStateMachine's check: grammar and transition graph, as AWS does."""
    from moto.core.exceptions import AWSError

    errors = [d for d in validate_definition(definition) if d["severity"] == "ERROR"]
    if errors:
        listed = "; ".join(f"{d['code']}: {d['message']} at {d['location']}" for d in errors)
        raise AWSError(f"Invalid State Machine Definition: '{listed}'", "InvalidDefinition")


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
