"""Systems Manager errors, in the shape moto serialises (code and message)."""

from __future__ import annotations

from moto.ssm.exceptions import SSMException


def error(code: str, message: str) -> Exception:
    return SSMException(code, message)
