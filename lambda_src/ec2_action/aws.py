"""AWS clients: created lazily, once per container, with standard retries; boto3/botocore are traced by X-Ray."""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import boto3
from aws_xray_sdk.core import patch, xray_recorder
from botocore.config import Config

xray_recorder.configure(context_missing="IGNORE_ERROR")
# Without an active trace (tracing off, the local cloud) the recorder warns on every call that it has no segment;
# IGNORE_ERROR means exactly that this is fine, so only its errors are kept.
logging.getLogger("aws_xray_sdk.core.recorder").setLevel(logging.ERROR)
patch(["boto3", "botocore"])

_CLIENT_CONFIG = Config(retries={"mode": "standard"})


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CLIENT_CONFIG)


@functools.cache
def table(name: str) -> Any:
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
