import json
from urllib.parse import unquote

import pytest

from ec2_action import messages
from ec2_action.config import ActionType

CONSOLE = messages.Console("us-east-1", "aws")
BUILD = {
    "image_id": "ami-0123456789abcdef0",
    "instance_type": "t3.large",
    "platform": "Linux",
    "timeout_minutes": 30,
    "command_timeout_seconds": 1800,
    "task_timeout_seconds": 2700,
}


def outcome(status: str = "Failed", code: int = 2, stdout: str = "", stderr: str = "", details: str = "") -> dict:
    return {
        "command_id": "c0ffee00-1111-2222-3333-444455556666",
        "instance_id": "i-0123456789abcdef0",
        "status": status,
        "status_details": details or status,
        "response_code": code,
        "stdout_tail": stdout,
        "stderr_tail": stderr,
        "log_group": "/ec2-build/builds",
        "log_stream_prefix": "c0ffee00-1111-2222-3333-444455556666/i-0123456789abcdef0/BuildOnLinux",
    }


def test_failure_names_exit_code_last_lines_and_the_full_log() -> None:
    stdout = "\n".join(f"step {i}" for i in range(100))
    result = messages.command_result(
        outcome(stdout=stdout, stderr="make: *** [test] Error 2"), BUILD, messages.Console("eu-west-1", "aws")
    )
    message = result["message"]
    assert result["succeeded"] is False and result["failure_type"] == "JobFailed"
    assert message.startswith("The build failed with exit code 2 on instance i-0123456789abcdef0 (t3.large")
    assert (
        "group /ec2-build/builds, stream c0ffee00-1111-2222-3333-444455556666/i-0123456789abcdef0/BuildOnLinux/stdout"
        in message
    )
    assert (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Fec2-build$252Fbuilds/log-events/"
        in message
    )
    assert "step 99" in message and "step 59" not in message  # the last 40 lines
    assert message.rstrip().endswith("make: *** [test] Error 2")


@pytest.mark.parametrize(
    ("region", "partition", "home"),
    [
        ("eu-west-1", "aws", "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#"),
        ("cn-north-1", "aws-cn", "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#"),
        (
            "us-gov-west-1",
            "aws-us-gov",
            "https://us-gov-west-1.console.amazonaws-us-gov.com/cloudwatch/home?region=us-gov-west-1#",
        ),
    ],
)
def test_the_log_link_opens_the_console_of_the_partition(region: str, partition: str, home: str) -> None:
    location = messages.log_location(messages.Console(region, partition), "/ec2-build/builds", "c0ffee00/i-0123/Build")
    stream = "c0ffee00$252Fi-0123$252FBuild$252Fstdout"
    assert location.endswith(f": {home}logsV2:log-groups/log-group/$252Fec2-build$252Fbuilds/log-events/{stream}")
    assert location.count("https://") == 1


def test_console_url_escapes_like_the_console() -> None:
    url = messages.log_console_url(CONSOLE, "/a b", "x/y")
    assert url.endswith("log-group/$252Fa$2520b/log-events/x$252Fy")
    assert unquote(unquote(url.split("log-group/")[1].replace("$", "%"))) == "/a b/log-events/x/y"


def test_huge_output_keeps_its_end_within_the_limit() -> None:
    lines = "\n".join(f"{i:05d}" + "x" * 400 for i in range(40))
    result = messages.command_result(outcome(stdout=lines), BUILD, CONSOLE)
    assert len(result["message"]) <= messages.MESSAGE_LIMIT
    assert result["message"].startswith("The build failed with exit code 2")
    assert result["message"].endswith("x" * 400) and "00039" in result["message"] and "00000" not in result["message"]


def test_success_summary_fits_and_shows_the_end_of_the_output() -> None:
    stdout = "\n".join(f"line {i} " + "y" * 100 for i in range(40))
    result = messages.command_result(outcome("Success", 0, stdout=stdout), BUILD, CONSOLE)
    assert result == {"succeeded": True, "message": result["message"], "failure_type": None}
    assert len(result["message"]) <= messages.SUMMARY_LIMIT
    assert result["message"].startswith("Build succeeded on instance i-0123456789abcdef0")
    assert "line 39" in result["message"]


def test_timed_out_command_names_the_limit() -> None:
    message = messages.command_result(outcome("TimedOut", -1, details="ExecutionTimedOut"), BUILD, CONSOLE)["message"]
    assert message.startswith("The build exceeded its timeout of 30 minutes (TimeoutMinutes)")


def test_undelivered_and_never_run_commands() -> None:
    undelivered = messages.command_result(outcome("TimedOut", -1, details="DeliveryTimedOut"), BUILD, CONSOLE)
    assert "never delivered" in undelivered["message"]
    never_ran = messages.command_result(outcome("Failed", -1, details="Undeliverable"), BUILD, CONSOLE)
    assert "did not run" in never_ran["message"] and "Undeliverable" in never_ran["message"]


def lambda_error(name: str, message: str) -> dict:
    return {"Error": name, "Cause": json.dumps({"errorMessage": message, "errorType": name, "stackTrace": []})}


def test_invalid_configuration_is_a_configuration_error() -> None:
    result = messages.step_failure(
        "AcquireInstance", lambda_error("InvalidJobConfiguration", "ImageId 'x' is not an AMI id"), None, {}, 900
    )
    assert result["failure_type"] == "ConfigurationError"
    assert result["message"] == "The action's configuration is invalid:\nImageId 'x' is not an AMI id"


def test_registration_timeout_says_what_to_check() -> None:
    state = {"instance": {"instance_id": "i-0abc"}}
    # wait_online's error at the end of the registration window
    error = lambda_error(
        "InstanceNotReady", "instance i-0abc is running; Systems Manager status: not Online after 95 checks"
    )
    result = messages.step_failure("WaitForSsmOnline", error, BUILD, state, 900)
    message = result["message"]
    assert result["failure_type"] == "JobFailed"
    assert "Instance i-0abc did not come Online in Systems Manager within 900 seconds" in message
    for hint in ("SSM Agent", "NAT gateway", "VPC", "ssm-agent policy", "not Online after 95 checks"):
        assert hint in message


def test_capacity_failure_keeps_type_and_subnets() -> None:
    error = lambda_error("NoCapacity", "no capacity for instance type t3.large in subnets subnet-a (Unsupported)")
    message = messages.step_failure("AcquireInstance", error, BUILD, {}, 900)["message"]
    assert "t3.large" in message and "subnet-a" in message and "another InstanceType" in message


ACTION = ActionType(
    category="Build", owner="Custom", provider="EC2-Linux", version="1", key="build", strategy="ephemeral", cap=4,
    defaults={}, pool=None,
)  # fmt: skip
CAPACITY_ADVICE = "raise max_concurrent_builds or the build timeout"


def test_a_job_that_waited_for_capacity_until_its_step_timed_out_says_so_plainly() -> None:
    """Step Functions' own timeout of WaitForCapacity (TimeoutSecondsPath: the build's task timeout), the backstop
    when no keeper pass failed the wait first."""
    error = {"Error": "States.Timeout", "Cause": ""}
    result = messages.step_failure("WaitForCapacity", error, BUILD, {}, 900, action=ACTION)
    assert result == {
        "succeeded": False,
        "message": "The build never started: it waited 45 minutes for capacity: action build allows 4 concurrent "
        f"builds and all were busy; {CAPACITY_ADVICE}.",
        "failure_type": "JobFailed",
    }
    # An action no longer served, a state without its build: still the reason, without what is unknown.
    assert messages.step_failure("WaitForCapacity", error, None, {}, 900)["message"] == (
        "The build never started: it waited until its timeout for capacity: all of the action's concurrent builds "
        f"were busy; {CAPACITY_ADVICE}."
    )


def test_a_capacity_timeout_says_how_long_the_job_waited_and_what_to_raise() -> None:
    """The keeper's CapacityTimeout (SendTaskFailure: a plain cause) and acquire's (a Lambda error) read the same."""
    cause = messages.capacity_timeout(61, ACTION)
    assert (
        cause
        == f"waited 1 minute for capacity: action build allows 4 concurrent builds and all were busy; {CAPACITY_ADVICE}"
    )
    for step, error in (
        ("WaitForCapacity", {"Error": "CapacityTimeout", "Cause": cause}),
        ("AcquireInstance", lambda_error("CapacityTimeout", cause)),
    ):
        assert messages.step_failure(step, error, BUILD, {}, 900)["message"] == f"The build never started: it {cause}."


def test_build_timeout_of_the_task_names_the_limit() -> None:
    state = {"instance": {"instance_id": "i-0abc"}}
    error = {"Error": "States.Timeout", "Cause": ""}
    message = messages.step_failure("RunBuildCommand", error, BUILD, state, 900)["message"]
    assert message.startswith("The build exceeded its timeout of 30 minutes (TimeoutMinutes) plus 15 minutes")


def test_crashed_step_names_the_step_and_the_error() -> None:
    error = lambda_error("KeyError", "'instance_id'")
    message = messages.step_failure("RunBuildCommand", error, BUILD, {}, 900)["message"]
    assert message == "The RunBuildCommand step failed: KeyError: 'instance_id'"


def test_release_warning_goes_first() -> None:
    note = messages.release_warning(lambda_error("ClientError", "throttled"), "i-0abc")
    result = messages.step_failure("AcquireInstance", lambda_error("InstanceLaunchFailed", "bad"), BUILD, {}, 900, note)
    assert result["message"].startswith("Warning: the build instance i-0abc could not be terminated (ClientError: thr")
    assert result["message"].endswith("EC2 refused to launch the build instance: bad")


def test_a_throttled_launch_says_the_request_rate_is_used_up_and_what_to_lower() -> None:
    error = lambda_error("LaunchThrottled", "RunInstances: RequestLimitExceeded: Request limit exceeded.")
    message = messages.step_failure("AcquireInstance", error, BUILD, {}, 900)["message"]
    assert message.startswith("EC2 kept throttling the launch, even after retries over about 5 minutes: RunInstances")
    assert "lower max_concurrent_builds" in message


def test_a_one_minute_timeout_reads_as_one_minute() -> None:
    outcome = {
        "instance_id": "i-0123456789abcdef0",
        "status": "TimedOut",
        "status_details": "ExecutionTimedOut",
        "response_code": 137,
        "stdout_tail": "started\n",
        "stderr_tail": "",
        "log_group": "/ec2-build/builds",
        "log_stream_prefix": "c/i/BuildOnLinux",
    }
    build = {"instance_type": "t3.micro", "platform": "Linux", "image_id": "ami-12345678", "timeout_minutes": 1}

    message = messages.command_result(outcome, build, CONSOLE)["message"]

    assert message.startswith("The build exceeded its timeout of 1 minute (TimeoutMinutes) on instance")


def output_section(message: str, heading: str) -> str:
    """The lines under a heading of the message, up to the next heading."""
    return message.split(heading, 1)[1].split("\nLast lines of errors", 1)[0]


def test_terminal_control_sequences_never_reach_the_message() -> None:
    stdout = "\x1b[1;32mcompiling\x1b[0m \x1b]0;title\x07done\nprogress 10%\rprogress 100%\n"
    stderr = "\x1b[31merror:\x1b[0m boom\x07\x00\n"

    message = messages.command_result(outcome(stdout=stdout, stderr=stderr), BUILD, CONSOLE)["message"]

    assert "compiling done\nprogress 100%\n" in message and message.endswith("error: boom")
    assert not any((ord(char) < 32 and char not in "\n\t") or 127 <= ord(char) < 160 for char in message)


def test_long_output_and_errors_each_keep_their_heading_and_last_whole_lines() -> None:
    stdout = "".join(f"output line {i} " + "o" * 150 + "\n" for i in range(1000))
    stderr = "".join(f"error line {i} " + "e" * 150 + "\n" for i in range(1000))

    for status, code, limit in (("Failed", 2, messages.MESSAGE_LIMIT), ("Success", 0, messages.SUMMARY_LIMIT)):
        message = messages.command_result(outcome(status, code, stdout, stderr), BUILD, CONSOLE)["message"]

        assert len(message) <= limit
        shown_output = output_section(message, "Last lines of output:\n").splitlines()
        shown_errors = message.split("Last lines of errors:\n", 1)[1].splitlines()
        assert shown_output[-1].startswith("output line 999 ") and shown_errors[-1].startswith("error line 999 ")
        # Whole lines only (no line cut at its beginning), and both streams get a fair share of the room.
        assert all(line.endswith("o" * 150) and line.startswith("output line ") for line in shown_output)
        assert all(line.endswith("e" * 150) and line.startswith("error line ") for line in shown_errors)
        assert abs(len(shown_output) - len(shown_errors)) <= 1


def test_short_errors_leave_their_room_to_the_output() -> None:
    stdout = "".join(f"step {i:04d} " + "s" * 90 + "\n" for i in range(1000))

    message = messages.command_result(outcome(stdout=stdout, stderr="make: *** Error 2\n"), BUILD, CONSOLE)["message"]

    shown = output_section(message, "Last lines of output:\n").splitlines()
    assert len(shown) == messages.TAIL_LINES and shown[-1].startswith("step 0999 ")
    assert message.endswith("Last lines of errors:\nmake: *** Error 2")


def test_output_read_from_the_returned_beginning_says_so_in_its_heading() -> None:
    note = "first 24,000 characters of output; the log stream could not be read: AccessDeniedException: denied"
    result = messages.command_result({**outcome(stdout="line 1\nline 2\n"), "stdout_note": note}, BUILD, CONSOLE)

    assert f"\nLast lines of output ({note}):\nline 1\nline 2" in result["message"]


def test_a_build_that_survived_interruptions_says_so_in_its_summarys_first_line() -> None:
    instance = {"instance_id": "i-0123456789abcdef0", "instance_type": "m5.large", "lifecycle": "on-demand"}
    result = messages.command_result(outcome("Success", 0, stdout="ok"), BUILD, CONSOLE, instance=instance,
                                     interruptions=2)  # fmt: skip

    first_line = result["message"].splitlines()[0]
    assert result["succeeded"] is True
    assert first_line == (
        "Build succeeded on instance i-0123456789abcdef0 (m5.large, Linux, ami-0123456789abcdef0); "
        "interrupted 2 times, finished on i-0123456789abcdef0 (on-demand)."
    )  # the type EC2 launched, not the first of the job's list
    once = messages.command_result(outcome("Success", 0), BUILD, CONSOLE, instance={"instance_id": "i-1",
                                   "lifecycle": "spot"}, interruptions=1)  # fmt: skip
    assert "; interrupted 1 time, finished on i-1 (spot)." in once["message"]
    never = messages.command_result(outcome("Success", 0), BUILD, CONSOLE, instance=instance)
    assert "interrupted" not in never["message"]
    assert never["message"].startswith("Build succeeded on instance i-0123456789abcdef0 (m5.large, Linux")


def test_a_failure_after_interruptions_names_them() -> None:
    history = [{"instance_id": "i-1", "step": "WaitForSsmOnline"}, {"instance_id": "i-2", "step": "RunBuildCommand"}]
    line = messages.interruptions_line(2, history)
    assert line == (
        "The build was interrupted 2 times before this (i-1 during WaitForSsmOnline, i-2 during RunBuildCommand): "
        "EC2 reclaimed its spot instance, and the build ran again from the start on a fresh one.\n"
    )
    assert messages.interruptions_line(0, []) == ""
    failed = messages.command_result(outcome(), BUILD, CONSOLE, note=line)["message"]
    assert failed.splitlines()[1] == line.rstrip()  # after the why, before the log's location
    step = messages.step_failure("AcquireInstance", {"Error": "NoCapacity", "Cause": "none"}, BUILD, {}, 900, line)
    assert step["message"].startswith(line + "No EC2 capacity")


def test_an_instance_lost_during_the_build_is_not_said_to_be_lost_before_it() -> None:
    error = {"Error": "InstanceLost", "Cause": "instance i-1 was terminated during the build (User initiated)"}
    message = messages.step_failure("RunBuildCommand", error, BUILD, {}, 900)["message"]
    assert message == "The build instance went away: instance i-1 was terminated during the build (User initiated)"
    before = messages.step_failure("WaitForSsmOnline", error, BUILD, {}, 900)["message"]
    assert before.startswith("The build instance went away before the build ran: ")
