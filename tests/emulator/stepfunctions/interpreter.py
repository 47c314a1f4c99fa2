"""Step Functions in the emulator: moto's ASL interpreter (execute_state_machine), made faithful where we need it.

- JSONPath: a definite path (`$.Instances[0].InstanceId`) yields the scalar, an indefinite one (`[*]`, `..`, filters,
  slices) a list.
- AWS time (Wait states, Retry intervals, TimeoutSeconds/TimeoutSecondsPath, HeartbeatSeconds) runs at clock.scale();
  the execution history keeps the AWS values.
- aws-sdk integrations get the API's member casing (from botocore's operation model) both ways.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from emulator import clock

_INDEFINITE_PATH = re.compile(r"\[\s*(\*|\?)|\[[^\]'\"]*[:,][^\]'\"]*\]|\.\.|\.\*")


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


def extract_json_everywhere(original: Any) -> Any:
    """``extract_json`` in place of moto's ``original`` in every interpreter module that imported it by name."""
    import sys

    import moto.stepfunctions.parser.models  # noqa: F401 (imports every module that uses extract_json)

    for module in list(sys.modules.values()):
        if module is not None and getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json  # type: ignore[attr-defined]
    return extract_json


class AwsTimeEvent(threading.Event):
    """An Event whose wait timeout is in AWS seconds (used by the interpreter's task timeout and callback waits)."""

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(None if timeout is None else clock.real_seconds(timeout))


def wait_state_body(self: Any, env: Any) -> None:
    """WaitFunction._eval_body: wait the state's seconds in AWS time; stop early if the execution stops."""
    deadline = time.monotonic() + clock.real_seconds(self._get_wait_seconds(env=env))
    while env.is_running() and (remaining := deadline - time.monotonic()) > 0:
        if env.program_state_event.wait(remaining):
            time.sleep(min(remaining, 0.01))  # an unrelated state change: keep waiting without spinning


def _operation_model(task: Any, service: str | None, action: str | None) -> Any:
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(task._get_boto_service_name(service))
    snake = task._get_boto_service_action(action)
    name = next(op for op in model.operation_names if xform_name(op) == snake)
    return model.operation_model(name)


def normalise_parameters(self: Any, parameters: dict, service: str | None = None, action: str | None = None) -> None:
    shape = _operation_model(self, service, action).input_shape
    if shape is not None:
        self._to_boto_request(parameters, shape)


def normalise_response(self: Any, response: Any, service: str | None = None, action: str | None = None) -> None:
    shape = _operation_model(self, service, action).output_shape
    if shape is not None:
        self._from_boto_response(response, shape)
