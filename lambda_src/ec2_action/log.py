"""JSON-lines logging to stdout (CloudWatch Logs) through aws-lambda-powertools' Logger.

Every line carries the function (`service`), where it was logged (`location`), the job id and execution ARN once
known, and, from `start(context)`, `cold_start` and `function_request_id`; `xray_trace_id` is added whenever Lambda
sets a trace id. botocore's own lines at WARNING and above (retries given up, a deprecated call, a pool full) go
through the same formatter, with the same keys, instead of the runtime's plain-text format.

Secrets never reach a line: keys that hold credentials are redacted wherever they appear, a second line of defence
behind codepipeline.sanitize_job, which drops artifactCredentials at the boundary.

The handlers are plain functions (no decorator): each calls `start(context, ...)` first, then `reset` between the
items of a pass and `bind` as it learns more.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from aws_lambda_powertools import Logger

SECRET_KEYS = frozenset({"artifactCredentials", "accessKeyId", "secretAccessKey", "sessionToken", "task_token"})

# Loggers of the AWS SDK whose own lines are kept (at WARNING and above) and formatted like ours.
SDK_LOGGERS = ("botocore",)

# The order of the first keys of a line; the job's keys, the line's own fields and xray_trace_id follow.
KEY_ORDER = ["level", "message", "timestamp", "service", "location"]

# The names a standard logging record already uses: a field of ours by one of these names gets a trailing "_"
# rather than crashing the line (logging refuses to overwrite them) or being read as a %-format.
_RECORD_NAMES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(value: Any) -> Any:
    """A copy of value with every credential-bearing key replaced by a marker."""
    if isinstance(value, dict):
        return {k: "[redacted]" if k in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _serialize(line: dict[str, Any]) -> str:
    """The line as JSON, redacted, with json's default separators (the line a person, or a test, greps)."""
    return json.dumps(redact(line), default=str)


class _StdoutHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stdout is when the line is logged (the runtime's, or a test's capture)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _new_logger() -> Logger:
    handler = _StdoutHandler()
    logger = Logger(
        service=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "ec2-action"),
        logger_handler=handler,
        json_serializer=_serialize,
        json_deserializer=str,  # a message is text: never parsed as JSON ("42" stays a string)
        log_record_order=KEY_ORDER,
        utc=True,
        use_rfc3339=True,
        location="%(module)s.%(funcName)s:%(lineno)d",
    )
    logging.getLogger(logger.name).propagate = False  # our lines only once, never also in the runtime's format
    for name in SDK_LOGGERS:
        sdk = logging.getLogger(name)
        sdk.handlers = [handler]
        sdk.setLevel(logging.WARNING)
        sdk.propagate = False
    return logger


_logger = _new_logger()
_bound: set[str] = set()
_warm = False


def _safe(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields with None values dropped and record names suffixed (see _RECORD_NAMES)."""
    return {f"{k}_" if k in _RECORD_NAMES else k: v for k, v in fields.items() if v is not None}


def start(context: Any, **fields: Any) -> None:
    """Start an invocation: its Lambda keys (cold_start, function_request_id) go on every line until the next start;
    then `reset(**fields)`. Without a Lambda context (a direct call) there are no such keys."""
    global _warm
    invocation: dict[str, Any] = {"cold_start": None, "function_request_id": None}
    if context is not None:
        provisioned = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency"
        invocation = {
            "cold_start": not (_warm or provisioned),
            "function_request_id": getattr(context, "aws_request_id", None),
        }
        _warm = True
    _logger.append_keys(**invocation)
    reset(**fields)


def reset(**fields: Any) -> None:
    """Start a new item (or invocation): forget the fields bound so far and bind these."""
    _logger.remove_keys(_bound)
    _bound.clear()
    bind(**fields)


def bind(**fields: Any) -> None:
    """Add fields (job_id, execution_arn, ...) to every following line; None values are ignored."""
    kept = _safe(fields)
    _bound.update(kept)
    _logger.append_keys(**kept)


# stacklevel 3: the location is the caller of info/warning/error, not this module.
def info(message: str, **fields: Any) -> None:
    _logger.info(message, stacklevel=3, **_safe(fields))


def warning(message: str, **fields: Any) -> None:
    _logger.warning(message, stacklevel=3, **_safe(fields))


def error(message: str, **fields: Any) -> None:
    _logger.error(message, stacklevel=3, **_safe(fields))
