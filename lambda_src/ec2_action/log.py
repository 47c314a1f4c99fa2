"""JSON-lines logging to stdout (CloudWatch Logs). Every line carries the job id and execution ARN once known.

Secrets never reach a line: keys that hold credentials are redacted wherever they appear, a second line of defence
behind codepipeline.sanitize_job, which drops artifactCredentials at the boundary.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

SECRET_KEYS = frozenset({"artifactCredentials", "accessKeyId", "secretAccessKey", "sessionToken", "task_token"})

_context: dict[str, Any] = {}


def reset(**fields: Any) -> None:
    """Start a new invocation: forget the previous one's context and remember these fields."""
    _context.clear()
    bind(**fields)


def bind(**fields: Any) -> None:
    """Add fields (job_id, execution_arn, ...) to every following line; None values are ignored."""
    _context.update({key: value for key, value in fields.items() if value is not None})


def redact(value: Any) -> Any:
    """A copy of value with every credential-bearing key replaced by a marker."""
    if isinstance(value, dict):
        return {k: "[redacted]" if k in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _emit(level: str, message: str, fields: dict[str, Any]) -> None:
    line = {"time": round(time.time(), 3), "level": level, "message": message, **_context, **fields}
    sys.stdout.write(json.dumps(redact(line), default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def info(message: str, **fields: Any) -> None:
    _emit("INFO", message, fields)


def warning(message: str, **fields: Any) -> None:
    _emit("WARNING", message, fields)


def error(message: str, **fields: Any) -> None:
    _emit("ERROR", message, fields)
