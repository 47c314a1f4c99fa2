"""AWS clients: created lazily, once per container, with standard retries. With tracing on (the module's
tracing_enabled), boto3/botocore calls are traced by X-Ray; the SDK is imported only then, because loading it (it
creates its own X-Ray clients) costs about a quarter of a second of every cold start."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import boto3
from botocore.config import Config

_CLIENT_CONFIG = Config(retries={"mode": "standard"})


@functools.cache
def _trace_if_enabled() -> None:
    from .config import load

    if not load().tracing:
        return
    from aws_xray_sdk.core import patch, xray_recorder

    xray_recorder.configure(context_missing="IGNORE_ERROR")
    # Without an active trace (the local cloud) the recorder warns on every call that it has no segment;
    # IGNORE_ERROR means exactly that this is fine, so only its errors are kept.
    logging.getLogger("aws_xray_sdk.core.recorder").setLevel(logging.ERROR)
    patch(["boto3", "botocore"])


@functools.cache
def client(service: str) -> Any:
    _trace_if_enabled()
    return boto3.client(service, config=_CLIENT_CONFIG)


@functools.cache
def table(name: str) -> Any:
    _trace_if_enabled()
    return boto3.resource("dynamodb", config=_CLIENT_CONFIG).Table(name)


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or client("sts").meta.region_name


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def reset() -> None:
    """Forget cached clients (tests switch regions and mocks between cases)."""
    client.cache_clear()
    table.cache_clear()
