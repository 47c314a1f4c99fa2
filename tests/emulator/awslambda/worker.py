"""A Lambda execution environment's process: `python -I -u worker.py --worker <marker> <handler> <paths...>`.

It imports the handler once and serves invocations one at a time (one JSON request per line on stdin, the response
after `marker` on stdout), like the Lambda Python runtime. Run by `emulator.awslambda.runtime`; its top level imports
only the standard library (it runs isolated, in the function's own sys.path).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any


class _Context:
    """The `context` argument of a Python Lambda handler."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = request["function_arn"]
        self.aws_request_id = request["request_id"]
        self.identity = None
        self.client_context = None
        self._deadline = request["deadline"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _configure_logging() -> _RequestIdFilter:
    """The Lambda Python runtime's root handler and format."""
    request_filter = _RequestIdFilter()
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)
    return request_filter


def _load_handler(name: str) -> Any:
    module_name, _, function_name = name.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        raise _RuntimeError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _RuntimeError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


class _RuntimeError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The Python runtime's error document; the stack trace leaves out the runtime's own frames."""
    error_type = exc.error_type if isinstance(exc, _RuntimeError) else type(exc).__name__
    frames = [] if isinstance(exc, _RuntimeError) else traceback.extract_tb(exc.__traceback__)
    stack = traceback.format_list([frame for frame in frames if frame.filename != __file__])
    print(f"[ERROR] {error_type}: {exc}\nTraceback (most recent call last):\n{''.join(stack)}", file=sys.stderr)
    return {"errorMessage": str(exc), "errorType": error_type, "requestId": request_id, "stackTrace": stack}


def _serve(handler_name: str, marker: str) -> None:
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    responses = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    request_filter = _configure_logging()
    handler = None
    for line in requests:
        request = json.loads(line)
        request_filter.request_id = request["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
        try:
            if handler is None:
                handler = _load_handler(handler_name)
            result = handler(json.loads(request["event"]), _Context(request))
            response = {"error": False, "payload": json.dumps(result)}
        except Exception as exc:
            response = {"error": True, "payload": json.dumps(_error_payload(exc, request["request_id"]))}
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(f"\n{marker}{json.dumps(response)}\n")
        responses.flush()


def _worker_main(argv: list[str]) -> None:
    """argv: marker, handler, then the directories to put first on sys.path (code, then layers)."""
    marker, handler_name, *paths = argv
    sys.path[:0] = paths
    os.chdir(paths[0])
    _serve(handler_name, marker)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker_main(sys.argv[2:])
