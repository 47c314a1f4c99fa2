"""EC2's errors for the instance lifecycle and throttling, with the codes, messages and HTTP statuses EC2 answers.

Client errors (HTTP 400) are moto EC2ClientErrors raised from a response method. Server errors (5xx: capacity,
throttling) are answered by `ServerError.answer`, because moto serializes every error it raises itself with 400, and
the status decides what an SDK retries (botocore's standard mode retries 500, 502, 503, 504 and throttling codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.ec2.exceptions import EC2ClientError

from emulator import faults


class IncorrectInstanceStateToStart(EC2ClientError):
    def __init__(self, instance_id: str) -> None:
        super().__init__(
            "IncorrectInstanceState", f"The instance '{instance_id}' is not in a state from which it can be started."
        )


class IncorrectInstanceStateToStop(EC2ClientError):
    def __init__(self, instance_id: str) -> None:
        super().__init__(
            "IncorrectInstanceState", f"This instance '{instance_id}' is not in a state from which it can be stopped."
        )


class UnsupportedHibernationConfiguration(EC2ClientError):
    """StopInstances with Hibernate for an instance not launched with HibernationOptions Configured=true: EC2's error
    list documents this code for it. Its exact wording is not documented; it ends with the instance id, as EC2's does
    (clients split it off after the last colon)."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(
            "UnsupportedHibernationConfiguration", f"Hibernation is not enabled for this instance: {instance_id}"
        )


class OneTimeSpotInstanceStop(EC2ClientError):
    """StopInstances of a Spot Instance of a one-time request (every Spot Instance an instant EC2 Fleet launches):
    EC2 can only stop Spot Instances of persistent requests."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(
            "UnsupportedOperation",
            f"You can't stop the Spot Instance '{instance_id}' because it is associated with a one-time Spot "
            "Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.",
        )


@dataclass(frozen=True)
class ServerError:
    """An EC2 error answered with a 5xx status."""

    code: str
    message: str
    status: int

    def answer(self, response: Any) -> tuple[int, dict[str, Any], Any]:
        """(status, headers, body) in EC2's protocol: what moto's call_action, or a response method, returns."""
        return faults.serialized_error(response, self.code, self.message, self.status)


def insufficient_capacity(instance_type: str, zone: str, other_zones: list[str]) -> ServerError:
    """InsufficientInstanceCapacity as EC2 words it for a start or launch in `zone` (a server error, HTTP 500)."""
    return ServerError(
        "InsufficientInstanceCapacity",
        f"We currently do not have sufficient {instance_type} capacity in the Availability Zone you requested "
        f"({zone}). Our system will be working on provisioning additional capacity. You can currently get "
        f"{instance_type} capacity by not specifying an Availability Zone in your request or choosing "
        f"{', '.join(other_zones)}.",
        500,
    )


REQUEST_LIMIT_EXCEEDED = ServerError("RequestLimitExceeded", "Request limit exceeded.", 503)
