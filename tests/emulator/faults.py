"""Fault injection for the local cloud. Tests call these in-process; `clear()` removes every fault.

- `inject_api_error`: any AWS API call (by boto3 service name and operation name) answers with an error.
- `never_register`: instances that never come Online in Systems Manager (consulted by ssm.agent).
- `hang_commands`: SSM commands the agent never runs; they stay InProgress (consulted by ssm.agent).
- `crash_lambda`: Lambda invocations that fail with an Unhandled LocalCloudInjectedCrash (awslambda.runtime).
- `kill_lambda_after`: a function's execution environment dies right after one of its API calls was served (the
  call took effect, the code after it never runs), as a Lambda timeout or an out-of-memory kill ends it.
- `drop_events`: events an AWS service emits that never reach the bus (consulted by events.emit).
- `no_capacity_to_start`: StartInstances answers InsufficientInstanceCapacity for chosen instances or the next N
  starts (consulted by ec2.instances).
- `throttle`: an EC2 operation's request token bucket shrunk to a given size and refill rate, whether or not EC2
  throttling is on (consulted by ec2.throttling).
- `fleet_capacity`: how many more instances EC2 Fleet can launch per lifecycle, instance type and zone (ec2.capacity).
- `interrupt_spot`, `rebalance_recommendation`, `spot_interruptions`: Spot Instance interruptions, with or without
  their warning, one by one or drawn at random for every Spot launch (ec2.spot).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import ServiceException

CRASH_ERROR_TYPE = "LocalCloudInjectedCrash"


class InjectedError(ServiceException):
    """An injected API error. Defined outside moto's packages so moto serializes it with the called service's model."""


@dataclass
class _Budget:
    """How many more times a fault fires; None: always."""

    remaining: int | None

    def take(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass
class _ApiError:
    service: str
    operation: str
    code: str
    message: str
    status: int
    budget: _Budget


@dataclass
class _Kill:
    function_name: str
    service: str
    operation: str
    budget: _Budget


@dataclass
class _EventDrop:
    detail_type: str
    match: Callable[[dict[str, Any]], bool] | None
    budget: _Budget


_lock = threading.Lock()
_api_errors: list[_ApiError] = []
_lambda_crashes: dict[str, _Budget] = {}
_kills: list[_Kill] = []
_unregistered_matchers: list[Callable[[Any], bool]] = []
_unregistered_launches = _Budget(0)
_hang_matchers: list[Callable[[str], bool]] = []
_hung_commands = _Budget(0)
_event_drops: list[_EventDrop] = []
_start_capacity_matchers: list[Callable[[Any], bool]] = []
_start_capacity_failures = _Budget(0)
_throttles: dict[str, tuple[float, float]] = {}


def inject_api_error(
    service: str, operation: str, code: str, message: str, times: int | None = 1, status: int = 400
) -> None:
    """Make `service`'s `operation` (e.g. "ec2", "RunInstances") fail with `code` the next `times` calls
    (None: every call). The error is serialized in the service's own protocol."""
    with _lock:
        _api_errors.append(_ApiError(service, operation, code, message, status, _Budget(times)))


def take_api_error(service: str, operation: str) -> tuple[str, str, int] | None:
    """(code, message, status) if an injected error fires for this call."""
    with _lock:
        for fault in _api_errors:
            if fault.service == service and fault.operation == operation and fault.budget.take():
                return fault.code, fault.message, fault.status
    return None


def never_register(match: Callable[[Any], bool] | None = None, *, count: int | None = None) -> None:
    """Instances that never come Online: those for which `match(instance)` is true (a moto EC2 Instance),
    and/or the next `count` instances launched."""
    if match is None and count is None:
        raise ValueError("never_register needs a match predicate or a count")
    with _lock:
        if match is not None:
            _unregistered_matchers.append(match)
        if count is not None:
            _unregistered_launches.remaining = (_unregistered_launches.remaining or 0) + count


def take_unregistered_launch() -> bool:
    """Called once per launched instance: True if it is one of the next N that never register."""
    with _lock:
        return _unregistered_launches.take()


def registration_blocked(instance: Any) -> bool:
    with _lock:
        matchers = list(_unregistered_matchers)
    return any(match(instance) for match in matchers)


def hang_commands(match: Callable[[str], bool] | None = None, *, count: int | None = None) -> None:
    """Command invocations the agent never runs (they stay InProgress): those whose instance id satisfies
    `match(instance_id)`, and/or the next `count` invocations."""
    if match is None and count is None:
        raise ValueError("hang_commands needs a match predicate or a count")
    with _lock:
        if match is not None:
            _hang_matchers.append(match)
        if count is not None:
            _hung_commands.remaining = (_hung_commands.remaining or 0) + count


def take_hung_command(instance_id: str) -> bool:
    with _lock:
        matchers = list(_hang_matchers)
    if any(match(instance_id) for match in matchers):
        return True
    with _lock:
        return _hung_commands.take()


def crash_lambda(function_name: str, times: int | None = 1) -> None:
    """The next `times` invocations of `function_name` (None: all) fail with an Unhandled LocalCloudInjectedCrash."""
    with _lock:
        _lambda_crashes[function_name] = _Budget(times)


def take_lambda_crash(function_name: str) -> bool:
    with _lock:
        budget = _lambda_crashes.get(function_name)
        return budget is not None and budget.take()


def kill_lambda_after(function_name: str, service: str, operation: str, times: int | None = 1) -> None:
    """The next `times` invocations of `function_name` that call `service`'s `operation` (e.g. "codepipeline",
    "AcknowledgeJob") die once the call has been served: the call takes effect, the function never sees its answer,
    and the invocation ends with Runtime.ExitError."""
    with _lock:
        _kills.append(_Kill(function_name, service, operation, _Budget(times)))


def take_kill(function_name: str, service: str, operation: str) -> bool:
    """Called after `function_name`'s call of `service`'s `operation` was served: True if the function dies now."""
    with _lock:
        return any(
            kill.function_name == function_name
            and kill.service == service
            and kill.operation == operation
            and kill.budget.take()
            for kill in _kills
        )


def drop_events(detail_type: str, count: int | None = 1, match: Callable[[dict[str, Any]], bool] | None = None) -> None:
    """Lose the next `count` (None: all) service events of `detail_type` whose detail satisfies `match` (if given):
    EventBridge delivery is best effort, and the design must survive a lost event."""
    with _lock:
        _event_drops.append(_EventDrop(detail_type, match, _Budget(count)))


def take_dropped_event(detail_type: str, detail: dict[str, Any]) -> bool:
    """Called once per emitted service event: True if it is lost."""
    with _lock:
        drops = [d for d in _event_drops if d.detail_type == detail_type]
    for drop in drops:
        if drop.match is not None and not drop.match(detail):
            continue
        with _lock:
            if drop.budget.take():
                return True
    return False


def no_capacity_to_start(match: Callable[[Any], bool] | None = None, *, count: int | None = None) -> None:
    """StartInstances fails with InsufficientInstanceCapacity (HTTP 500, as EC2 answers it) for instances for which
    `match(instance)` is true (a moto EC2 Instance), every time, and/or for the next `count` instances it would start
    (an SDK's retry of the failed call counts as another start)."""
    if match is None and count is None:
        raise ValueError("no_capacity_to_start needs a match predicate or a count")
    with _lock:
        if match is not None:
            _start_capacity_matchers.append(match)
        if count is not None:
            _start_capacity_failures.remaining = (_start_capacity_failures.remaining or 0) + count


def take_start_capacity_error(instance: Any) -> bool:
    """Called once per stopped instance a StartInstances would start: True if there is no capacity for it."""
    with _lock:
        matchers = list(_start_capacity_matchers)
    if any(match(instance) for match in matchers):
        return True
    with _lock:
        return _start_capacity_failures.take()


def throttle(operation: str, bucket: float, refill_per_second: float) -> None:
    """EC2's `operation` (e.g. "RunInstances") gets a request token bucket of `bucket` tokens refilled with
    `refill_per_second` tokens per AWS second, starting full, whether or not EC2 throttling is on."""
    if bucket < 1 or refill_per_second < 0:
        raise ValueError("a bucket holds at least one token and refills at a rate >= 0")
    with _lock:
        _throttles[operation] = (float(bucket), float(refill_per_second))


def throttled_bucket(operation: str) -> tuple[float, float] | None:
    """(bucket size, refill per AWS second) that `throttle` set for `operation`, if any."""
    with _lock:
        return _throttles.get(operation)


def fleet_capacity(
    lifecycle: str | None = None, instance_type: str | None = None, zone: str | None = None, available: int | None = 0
) -> None:
    """EC2 Fleet's pools of `lifecycle` ("spot" | "on-demand"), `instance_type` and Availability Zone `zone` (None:
    any) can launch `available` more instances (None: unlimited, every pool's default); an override of a pool with
    none left is answered InsufficientInstanceCapacity. The latest call naming a pool governs it."""
    from emulator.ec2 import capacity

    capacity.limit(lifecycle, instance_type, zone, available)


def interrupt_spot(instance_id: str, warning: bool = True, notice_seconds: float = 120) -> None:
    """EC2 interrupts the Spot Instance: the "EC2 Spot Instance Interruption Warning" event (unless `warning` is
    False: a lost warning), then after `notice_seconds` AWS seconds its termination with StateReason
    Server.SpotInstanceTermination. ValueError for an instance that is not a Spot Instance."""
    from emulator.ec2 import spot

    spot.interrupt(instance_id, warning, notice_seconds)


def rebalance_recommendation(instance_id: str) -> None:
    """EC2 emits "EC2 Instance Rebalance Recommendation" for the Spot Instance (nothing else happens to it)."""
    from emulator.ec2 import spot

    spot.rebalance_recommendation(instance_id)


def spot_interruptions(rate: float, seed: int, after_seconds: tuple[float, float]) -> None:
    """Each Spot Instance launched from now on is interrupted (warning, then termination two AWS minutes later) with
    probability `rate`, at a moment drawn in the window of `after_seconds` (low, high) AWS seconds after its launch;
    the same seed draws the same interruptions for the same launches."""
    from emulator.ec2 import spot

    spot.draw(rate, seed, after_seconds)


def clear() -> None:
    from emulator.ec2 import capacity, spot

    capacity.reset()
    spot.clear()
    with _lock:
        _api_errors.clear()
        _lambda_crashes.clear()
        _kills.clear()
        _unregistered_matchers.clear()
        _unregistered_launches.remaining = 0
        _hang_matchers.clear()
        _hung_commands.remaining = 0
        _event_drops.clear()
        _start_capacity_matchers.clear()
        _start_capacity_failures.remaining = 0
        _throttles.clear()


def serialized_error(response: Any, code: str, message: str, status: int) -> tuple[int, dict[str, Any], Any]:
    """An error answer in the protocol of the service `response` (a moto BaseResponse) serves, with `status`:
    moto gives every error it serializes itself HTTP 400."""
    from moto.core.responses import ActionResult

    _, headers, body = response.serialized(ActionResult(InjectedError(code, message)))
    headers["status"] = str(status)
    return status, headers, body


def call_action(original: Any) -> Any:
    """moto's request dispatch (every service that answers through BaseResponse.call_action) with injected API
    errors, serialized in the called service's protocol, and the kills of kill_lambda_after."""
    from moto.core.responses import BaseResponse

    from emulator.awslambda import runtime

    def dispatch(self: BaseResponse) -> Any:
        service, operation = self.boto3_service_name, self._get_action()
        fault = take_api_error(service, operation)
        if fault is None:
            served = original(self)
            caller = runtime.calling_worker(self.headers.get("User-Agent", ""))
            if caller is not None and take_kill(caller.function_name, service, operation):
                caller.kill()
            return served
        code, message, status = fault
        return serialized_error(self, code, message, status)

    return dispatch
