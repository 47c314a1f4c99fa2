"""outcome.read: the end of a finished build's output, from the log stream when Systems Manager returns only its
beginning, with real commands run by the local cloud's SSM Agent."""

import re
import time

from conftest import Agent, Cloud, build_spec, make_job
from test_run_command import online_instance, pooled_instance

from ec2_action import messages, outcome
from ec2_action.handlers import run_command
from emulator import faults

HUGE_BUILD = "seq 1 100000 | sed 's/^/line /'\nseq 1 3000 | sed 's/^/warning /' >&2\nexit 3"
NUMBERED = re.compile(r"(?:line|warning) (\d+)")


def finished_build(cloud: Cloud, agent: Agent, command: str) -> tuple[str, str]:
    """Run command as a build on an Online instance until it ends: (command id, instance id)."""
    job = make_job(input_artifact=None, configuration={})
    instance = online_instance(cloud, job)
    event = {"task_token": "token", "job": job, "build": build_spec(cloud.linux_ami, command=command),
             "instance": instance}  # fmt: skip
    command_id = run_command.handler(event, cloud.context)["command_id"]
    agent.final_event(command_id)
    return command_id, instance["instance_id"]


def numbers(tail: str) -> list[int]:
    """The numbers of a tail's lines, each of which must be a whole numbered line."""
    found = [NUMBERED.fullmatch(line) for line in tail.splitlines()]
    assert all(found), [line for line, match in zip(tail.splitlines(), found, strict=True) if not match][:3]
    return [int(match.group(1)) for match in found if match]


def consecutive(values: list[int]) -> bool:
    return values == list(range(values[0], values[0] + len(values)))


def test_a_huge_output_shows_its_real_last_lines_from_the_log_stream(cloud: Cloud, agent: Agent) -> None:
    command_id, instance_id = finished_build(cloud, agent, HUGE_BUILD)

    output = outcome.read(command_id, instance_id, "BuildOnLinux")

    assert output is not None and (output["status"], output["response_code"]) == ("Failed", 3)
    assert (output["stdout_note"], output["stderr_note"]) == ("", "")
    stdout = numbers(output["stdout_tail"])
    assert stdout[-1] == 100_000 and consecutive(stdout)  # whole lines up to the very last one
    assert len(output["stdout_tail"]) <= outcome.TAIL_CHARS < len(output["stdout_tail"]) + len("line 99999\n")
    stderr_lines = output["stderr_tail"].splitlines()
    assert stderr_lines[-2:] == [
        "ec2-action: the build command exited with code 3",
        "failed to run commands: exit status 3",
    ]
    warnings = numbers("\n".join(stderr_lines[:-2]))
    assert warnings[-1] == 3000 and consecutive(warnings)
    assert "retire" not in output  # the errors' end was read: no retire line in it


def test_the_failure_message_names_the_last_line_not_the_24000th_character(cloud: Cloud, agent: Agent) -> None:
    command_id, instance_id = finished_build(cloud, agent, HUGE_BUILD)
    build = build_spec(cloud.linux_ami)

    message = messages.command_result(
        outcome.read(command_id, instance_id, "BuildOnLinux"), build, messages.Console("us-east-1", "aws")
    )["message"]

    assert len(message) <= messages.MESSAGE_LIMIT
    output = message.split("Last lines of output:\n", 1)[1].split("\nLast lines of errors:\n")[0]
    assert numbers(output)[-1] == 100_000 and consecutive(numbers(output))
    assert "line 2400\n" not in message and "--output truncated--" not in message


def test_without_the_log_stream_the_returned_beginning_is_shown_and_said_to_be_one(cloud: Cloud, agent: Agent) -> None:
    command_id, instance_id = finished_build(cloud, agent, HUGE_BUILD)
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/ec2-build-poll/x is not authorized to perform: logs:GetLogEvents"
    )
    faults.inject_api_error("logs", "GetLogEvents", "AccessDeniedException", denied, times=None)

    output = outcome.read(command_id, instance_id, "BuildOnLinux")

    assert output["stdout_note"] == (
        f"first 24,000 characters of output; the log stream could not be read: AccessDeniedException: {denied}"
    )
    assert output["stderr_note"].startswith("first 8,000 characters of errors; the log stream could not be read: ")
    stdout = numbers(output["stdout_tail"])
    assert consecutive(stdout) and stdout[-1] < 3000
    # The line the 24,000-byte cut split is left out; so is the agent's mark of the cut.
    returned = cloud.client("ssm").get_command_invocation(
        CommandId=command_id, InstanceId=instance_id, PluginName="BuildOnLinux"
    )["StandardOutputContent"]
    split = returned.removesuffix(outcome.AGENT_CUT_SUFFIX).rsplit("\n", 1)[1]
    assert split and f"line {stdout[-1] + 1}".startswith(split) and split != f"line {stdout[-1] + 1}"
    assert "truncated" not in output["stdout_tail"]
    # Whether a pooled step's clean-up succeeded is unknown: its instance is not reused.
    assert output["retire"] == outcome.UNKNOWN_CLEANUP
    message = messages.command_result(output, build_spec(cloud.linux_ami), messages.Console("us-east-1", "aws"))[
        "message"
    ]
    assert "Last lines of output (first 24,000 characters of output; the log stream could not be read: " in message


def test_a_missing_log_stream_is_named_as_the_reason(cloud: Cloud, agent: Agent) -> None:
    command_id, instance_id = finished_build(cloud, agent, "seq 1 5000 | sed 's/^/line /'")
    cloud.configure(build_log_group_name="/ec2-build/another-group")  # where nothing was written

    output = outcome.read(command_id, instance_id, "BuildOnLinux")

    assert output["stdout_note"].startswith("first 24,000 characters of output; the log stream could not be read: ")
    assert "ResourceNotFoundException" in output["stdout_note"]


def test_a_short_output_is_whole_without_the_log_stream_and_shown_without_terminal_codes(
    cloud: Cloud, agent: Agent
) -> None:
    command = (
        r"printf '\033[1;32mgreen\033[0m and \033]8;;https://example.com\007a link\033]8;;\007\n'"
        "\n"
        r"printf 'step 10%%\rstep 55%%\rstep 100%%\n'"
        "\n"
        r"printf '\033[31mred\033[0m\tbell\007\n' >&2"
    )
    command_id, instance_id = finished_build(cloud, agent, command)
    faults.inject_api_error("logs", "GetLogEvents", "AccessDeniedException", "denied", times=None)

    output = outcome.read(command_id, instance_id, "BuildOnLinux")

    assert (output["stdout_note"], output["stderr_note"]) == ("", "")
    assert "\ngreen and a link\nstep 100%\n" in output["stdout_tail"]
    assert output["stderr_tail"] == "red\tbell\n"
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", output["stdout_tail"] + output["stderr_tail"])


def test_reading_a_stream_end_takes_a_bounded_number_of_pages(cloud: Cloud) -> None:
    logs = cloud.client("logs")
    logs.create_log_group(logGroupName="/g")
    logs.create_log_stream(logGroupName="/g", logStreamName="s")
    start_ms = int(time.time() * 1000) - 60_000
    events = [{"timestamp": start_ms + i, "message": f"{i}"} for i in range(1000)]
    for start in range(0, len(events), 250):
        logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=events[start : start + 250])

    tail = outcome.log_tail("/g", "s")

    # Short events: three pages of the last 100 events each, though that is less than TAIL_CHARS.
    assert tail == "".join(f"{i}\n" for i in range(700, 1000))


def pooled_build(cloud: Cloud, agent: Agent, command: str, reset_command: str) -> tuple[str, str]:
    """Run command as a build on an Online member of a warm pool until it ends: (command id, instance id)."""
    job = make_job(input_artifact=None, configuration={})
    instance = pooled_instance(cloud, job, reset_command)
    event = {"task_token": "token", "job": job, "build": build_spec(cloud.linux_ami, command=command),
             "instance": instance}  # fmt: skip
    command_id = run_command.handler(event, cloud.context)["command_id"]
    agent.final_event(command_id)
    return command_id, instance["instance_id"]


def test_a_failed_reset_command_asks_for_the_instance_to_be_retired(cloud: Cloud, agent: Agent) -> None:
    command_id, instance_id = pooled_build(cloud, agent, "echo built", "echo pruning >&2\nexit 7")

    output = outcome.read(command_id, instance_id, "BuildOnLinux")

    assert (output["status"], output["response_code"]) == ("Success", 0)  # the build's result, not the reset's
    assert output["retire"] == "the reset command exited 7"
    assert output["stderr_tail"] == "pruning\nec2-action: retire-instance: the reset command exited 7\n"


def test_a_pooled_build_whose_reset_succeeds_keeps_its_instance(cloud: Cloud, agent: Agent) -> None:
    command_id, instance_id = pooled_build(cloud, agent, "echo built; exit 4", "echo pruning")

    output = outcome.read(command_id, instance_id, "BuildOnLinux")

    assert (output["status"], output["response_code"]) == ("Failed", 4)
    assert "retire" not in output  # a failed build's instance is retired by release, for its own reason
    assert "pruning" in output["stdout_tail"]


def test_the_last_retire_line_is_the_reason() -> None:
    stderr = (
        "ec2-action: retire-instance: cannot remove the leftover workspace /tmp/x\n"
        "  ec2-action: retire-instance: indented, not the step's\n"
        "ec2-action: retire-instance: the reset command exited 2\n"
        "failed to run commands: exit status 1\n"
    )

    assert outcome.retire_reason(stderr) == "the reset command exited 2"
    assert outcome.retire_reason("error: ec2-action: retire-instance: quoted\n") is None
    assert outcome.retire_reason("", "first 8,000 characters of errors; ...") == outcome.UNKNOWN_CLEANUP
