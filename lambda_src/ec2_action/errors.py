"""Errors the state machine tells apart: the Lambda error type is the class name (see asl/build-job.asl.json)."""


class InvalidJobConfiguration(Exception):
    """The job's configuration breaks a guardrail or names an unusable AMI; never retried."""


class NoCapacity(Exception):
    """No subnet had capacity for the instance type; the state machine retries with backoff."""


class LaunchThrottled(Exception):
    """EC2 throttled RunInstances or StartInstances (RequestLimitExceeded) beyond the SDK's own retries: the
    account's request or resource bucket is empty for now. The state machine retries with backoff; the job's slot and
    the launch's client token stay, so a retry never launches twice."""


class InstanceLaunchFailed(Exception):
    """RunInstances failed for a reason other than capacity; never retried."""


class InstanceNotReady(Exception):
    """The instance did not come Online in Systems Manager within the registration window (wait_online), or Systems
    Manager could not reach it yet when the command was sent (run_command: retried)."""


class InstanceLost(Exception):
    """The instance stopped or terminated before the build ran; never retried."""


class CapacityTimeout(Exception):
    """The job waited for capacity (its action's max_concurrent_builds) until its build timeout left no time to
    build; never retried."""


class StackDestroyed(Exception):
    """The module is being destroyed (terraform destroy): the drain fails every queued job's wait with this error
    (drain.py); never retried."""
