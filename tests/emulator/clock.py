"""AWS time in the local cloud: every wait that AWS measures (Wait states, Retry intervals, task timeouts, SSM
registration and execution timeouts) goes through here, scaled by LOCALCLOUD_TIME_SCALE (default 1.0).

Real work (a build's own `sleep 30`, a Lambda's run time) is never scaled.
"""

from __future__ import annotations

import os
import time


def scale() -> float:
    """The factor applied to AWS-time durations; LOCALCLOUD_TIME_SCALE=0.05 makes 20 AWS seconds last 1 s."""
    value = float(os.environ.get("LOCALCLOUD_TIME_SCALE", "1.0"))
    if value <= 0:
        raise ValueError(f"LOCALCLOUD_TIME_SCALE must be positive, got {value}")
    return value


def real_seconds(aws_seconds: float) -> float:
    """How long `aws_seconds` of AWS time lasts here."""
    return max(0.0, aws_seconds) * scale()


def aws_seconds(real: float) -> float:
    """How much AWS time `real` seconds here stand for (token buckets refill in AWS time)."""
    return max(0.0, real) / scale()


def sleep(aws_seconds: float) -> None:
    time.sleep(real_seconds(aws_seconds))
