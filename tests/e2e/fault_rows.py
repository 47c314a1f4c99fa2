"""The fault matrix's rows: each fault injected into the local cloud and what the module must do about it (run by
test_fault_matrix.py and `make faults`, through harness.matrix)."""

from __future__ import annotations

from emulator import faults
from harness.matrix import (
    BUILD_SUCCEEDED,
    FAILED,
    QUEUED,
    SDK_ATTEMPTS,
    SUCCEEDED,
    Hook,
    Row,
    all_of,
    api_error,
    crash,
    errors_alarmed,
    job_metrics_say,
    lose_started_event,
    no_started_event_delivered,
    one_final_answer,
    output_contains,
    race_the_reaper,
    ran_at_least,
    reap_until_answered,
    redeliver_started_event,
    stop_execution_by_hand,
    two_pollers,
)
from harness.spot_matrix import capacity_after_one_failed_acquire, no_capacity

LAMBDA_STEPS = {  # Lambda key -> the state machine step a permanent crash is reported as
    "acquire": "AcquireInstance",
    "wait_online": "WaitForSsmOnline",
    "run_command": "RunBuildCommand",
}


def _crash_once_rows() -> list[Row]:
    keys = ("poll", "acquire", "wait_online", "run_command", "command_event", "release", "report")
    rows = []
    for key in keys:
        # command_event gets the command's end only (the rule filters terminal statuses): its asynchronous retry or
        # the sweep, whichever comes first, delivers the outcome.
        rows.append(
            Row(
                f"crash-once-{key}",
                f"the {key} Lambda crashes once",
                SUCCEEDED,
                message=BUILD_SUCCEEDED,
                command="sleep 1; echo built",
                inject=crash(key, 1),
                proof=ran_at_least(key, 1 if key == "command_event" else 2),
            )
        )
    return rows


def kill_poll_after(service: str, operation: str) -> Hook:
    return lambda run: faults.kill_lambda_after(run.function_name("poll"), service, operation, times=1)


def _poller_dies_rows() -> list[Row]:
    """The poll function dies at each point from PollForJobs to the Details link (its timeout under load, a crash):
    the sweep finishes what it began, the job runs once and is answered once."""
    points = (
        ("codepipeline", "PollForJobs", "having polled the job, before recording it"),
        ("dynamodb", "UpdateItem", "having recorded (claimed) the job, before acknowledging it"),
        ("codepipeline", "AcknowledgeJob", "having acknowledged the job, before starting its execution"),
        ("stepfunctions", "StartExecution", "having started the execution, before publishing its Details link"),
        ("codepipeline", "PutJobSuccessResult", "having published the Details link, before taking its continuation"),
    )
    return [
        Row(
            f"poller-dies-after-{operation}",
            f"the poll Lambda dies {when}",
            SUCCEEDED,
            message=BUILD_SUCCEEDED,
            inject=kill_poll_after(service, operation),
            proof=all_of(ran_at_least("poll", 2), one_final_answer),
        )
        for service, operation, when in points
    ]


def _crash_always_rows() -> list[Row]:
    rows = [
        Row(
            "crash-always-poll",
            "the poll Lambda always crashes: no job can be taken (the job stays Queued, untouched)",
            QUEUED,
            may_launch=False,
            inject=crash("poll", None),
            # The STARTED event and the sweeps keep trying, and the poll function's Errors alarm tells the operator.
            proof=all_of(ran_at_least("poll", 2), errors_alarmed("poll")),
        )
    ]
    for key, step in LAMBDA_STEPS.items():
        rows.append(
            Row(
                f"crash-always-{key}",
                f"the {key} Lambda always crashes",
                FAILED,
                "JobFailed",
                f"The {step} step failed: {faults.CRASH_ERROR_TYPE}",
                may_launch=key in ("wait_online", "run_command"),
                inject=crash(key, None),
            )
        )
    rows += [
        Row(
            "crash-always-command_event",
            "the command_event Lambda always crashes: the sweep delivers the command's outcome",
            SUCCEEDED,
            message=BUILD_SUCCEEDED,
            inject=crash("command_event", None),
        ),
        Row(
            "crash-always-release",
            "the release Lambda always crashes: the job is answered with a warning, the reaper terminates",
            SUCCEEDED,
            message="could not be terminated",
            inject=crash("release", None),
        ),
        Row(
            "crash-always-report",
            "the report Lambda always crashes: the reaper answers the job",
            FAILED,
            "JobFailed",
            "ended with status FAILED without reporting the job",
            inject=crash("report", None),
            during=reap_until_answered,
        ),
    ]
    return rows


# No capacity in any pool at all is a row of the spot matrix (spot_rows.py: no-capacity-anywhere).
FAULT_ROWS: list[Row] = [
    Row(
        "no-capacity-once",
        "CreateFleet: no capacity in any pool for one acquire attempt, then capacity (the attempt's retry launches)",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        inject=no_capacity(),
        during=capacity_after_one_failed_acquire,
        proof=ran_at_least("acquire", 2),
    ),
    Row(
        "never-registers",
        "the instance never comes Online in Systems Manager",
        FAILED,
        "JobFailed",
        "did not come Online in Systems Manager",
        inject=lambda run: faults.never_register(count=1),
    ),
    Row(
        "command-fails",
        "the build command exits 7 after writing to stderr",
        FAILED,
        "JobFailed",
        "The build failed with exit code 7",
        command="echo compiling module-a\necho 'error: undefined symbol frobnicate' >&2\nexit 7",
        proof=all_of(
            output_contains("undefined symbol frobnicate", "Full log: CloudWatch Logs group"),
            job_metrics_say("CommandFailed"),
        ),
    ),
    Row(
        "command-timeout",
        "the build command outlives TimeoutMinutes=1",
        FAILED,
        "JobFailed",
        "exceeded its timeout of 1 minute",
        command="echo started\nsleep 600",
        configure=lambda run: {"TimeoutMinutes": "1"},
    ),
    *_crash_once_rows(),
    *_crash_always_rows(),
    Row(
        "stopped-by-hand",
        "the execution is stopped by hand (StopExecution) while the command runs: the reaper answers and terminates",
        FAILED,
        "JobFailed",
        "ended with status ABORTED without reporting the job",
        command="sleep 30; echo never",
        during=stop_execution_by_hand,
    ),
    Row(
        "release-throttled",
        "TerminateInstances: RequestLimitExceeded four times (beyond the SDK's retries), then succeeds",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        inject=api_error("ec2", "TerminateInstances", "RequestLimitExceeded", SDK_ATTEMPTS + 1, 503),
        proof=ran_at_least("release", 2),
    ),
    Row(
        "duplicate-started",
        "the STARTED event is delivered three times",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        command="sleep 1; echo once",
        during=redeliver_started_event,
        proof=one_final_answer,
    ),
    Row(
        "two-pollers",
        "two pollers race for the same job",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        command="sleep 1; echo once",
        during=two_pollers,
        proof=one_final_answer,
    ),
    *_poller_dies_rows(),
    Row(
        "start-throttled",
        "StartExecution: ThrottlingException on every attempt of the poller (the SDK's 3): the sweep starts it",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        inject=api_error("stepfunctions", "StartExecution", "ThrottlingException", SDK_ATTEMPTS),
        proof=all_of(ran_at_least("poll", 2), one_final_answer),
    ),
    Row(
        "started-lost",
        "the STARTED event is lost: the schedule sweep takes the job",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        inject=lose_started_event,
        proof=no_started_event_delivered,
    ),
    Row(
        "reaper-races-build",
        "the reaper runs again and again during a 20 s build",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        command="sleep 20; echo done",
        during=race_the_reaper,
    ),
]
