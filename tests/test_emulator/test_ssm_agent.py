"""SSM registration and the emulated agent, against the moto server with real shell steps."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator import server
from emulator.ssm import agent as ssm_agent
from harness import rendered

# Two of moto's built-in AMIs (moto/ec2/resources/amis.json.gz); DescribeImages over all of them takes seconds.
LINUX_AMI = "ami-1e749f67"
WINDOWS_AMI = "ami-03cf127a"
SCALE = 0.05  # 20 AWS seconds of registration delay last 1 s
JOB_ID = "12345678-1234-4234-8234-123456789012"
HOSTILE = """it's "quoted" $(touch {marker}) `touch {marker}`; touch {marker} && echo $HOME \\ end"""

PROBE_DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "probe",
    "parameters": {
        "Value": {"type": "String", "interpolationType": "ENV_VAR"},
        "ExitCode": {"type": "String", "default": "0", "allowedPattern": "^[0-9]+$"},
        "Sleep": {"type": "String", "default": "0", "allowedPattern": "^[0-9]+$"},
        "executionTimeout": {"type": "String", "default": "3600"},
    },
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "Probe",
            "precondition": {"StringEquals": ["platformType", "Linux"]},
            "inputs": {
                "timeoutSeconds": "{{ executionTimeout }}",
                "runCommand": [
                    'printf "%s\\n" "$SSM_Value"',
                    "echo literal={{ Value }}",
                    "echo to-stderr >&2",
                    "sleep {{ Sleep }}",
                    "exit {{ ExitCode }}",
                ],
            },
        },
        {
            "action": "aws:runPowerShellScript",
            "name": "ProbeWindows",
            "precondition": {"StringEquals": ["platformType", "Windows"]},
            "inputs": {"runCommand": ["Write-Output $env:SSM_Value"]},
        },
    ],
}


PRINTER_DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "prints Count numbered lines to stdout and to stderr",
    "parameters": {"Count": {"type": "String", "interpolationType": "ENV_VAR", "allowedPattern": "^[0-9]+$"}},
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "Print",
            "inputs": {
                "runCommand": ['seq 1 "$SSM_Count" | sed "s/^/line /"', 'seq 1 "$SSM_Count" | sed "s/^/error /" >&2']
            },
        }
    ],
}


NOTES_DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "appends Line to a file in HOME and prints the file",
    "parameters": {"Line": {"type": "String", "interpolationType": "ENV_VAR"}},
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "Note",
            "inputs": {"runCommand": ['printf "%s\\n" "$SSM_Line" >> "$HOME/notes"', 'cat "$HOME/notes"']},
        }
    ],
}
START_DELAY, RECONNECT_DELAY = 20, 5  # AWS seconds


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALCLOUD_TIME_SCALE", str(SCALE))
        patch.setenv("LOCALCLOUD_START_DELAY_SECONDS", str(START_DELAY))
        patch.setenv("LOCALCLOUD_STOP_DELAY_SECONDS", "10")
        patch.setenv("LOCALCLOUD_SSM_RECONNECT_DELAY_SECONDS", str(RECONNECT_DELAY))
        cloud = server.start()
        yield cloud
        cloud.stop()


@pytest.fixture(scope="module")
def events() -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    def record(source: str, detail_type: str, detail: dict, account: str, region: str, resources=()) -> None:
        received.append({"source": source, "detail-type": detail_type, "detail": detail, "resources": resources})

    ssm_agent.set_event_sink(record)
    yield received
    ssm_agent.set_event_sink(None)


@pytest.fixture(scope="module")
def aws(cloud: server.LocalCloud, events) -> dict[str, Any]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)
    clients = {name: session.client(name, endpoint_url=cloud.endpoint) for name in ("ec2", "iam", "ssm", "logs")}
    clients["iam"].create_role(RoleName="builder", AssumeRolePolicyDocument="{}")
    clients["iam"].create_instance_profile(InstanceProfileName="builder")
    clients["iam"].add_role_to_instance_profile(InstanceProfileName="builder", RoleName="builder")
    template = clients["ec2"].create_launch_template(
        LaunchTemplateName="builder", LaunchTemplateData={"IamInstanceProfile": {"Name": "builder"}}
    )
    clients["template_id"] = template["LaunchTemplate"]["LaunchTemplateId"]
    for name, document in (("probe", PROBE_DOCUMENT), ("printer", PRINTER_DOCUMENT), ("notes", NOTES_DOCUMENT)):
        clients["ssm"].create_document(
            Name=name, Content=json.dumps(document), DocumentType="Command", DocumentFormat="JSON"
        )
    return clients


def _launch(aws: dict[str, Any], count: int = 1, windows: bool = False) -> list[str]:
    reservation = aws["ec2"].run_instances(
        ImageId=WINDOWS_AMI if windows else LINUX_AMI,
        MinCount=count,
        MaxCount=count,
        LaunchTemplate={"LaunchTemplateId": aws["template_id"]},
    )
    return [instance["InstanceId"] for instance in reservation["Instances"]]


def _online(aws: dict[str, Any], instance_ids: list[str]) -> list[str]:
    filters = [{"Key": "InstanceIds", "Values": instance_ids}]
    found = aws["ssm"].describe_instance_information(Filters=filters)["InstanceInformationList"]
    return [i["InstanceId"] for i in found if i["PingStatus"] == "Online"]


def _registered(aws: dict[str, Any], count: int = 1, windows: bool = False) -> list[str]:
    instance_ids = _launch(aws, count, windows)
    deadline = time.monotonic() + 10
    while len(_online(aws, instance_ids)) < count:
        assert time.monotonic() < deadline, "the instances never came Online"
        time.sleep(0.1)
    return instance_ids


def _send(aws: dict[str, Any], instance_id: str, document: str = "probe", **parameters: str) -> str:
    command = aws["ssm"].send_command(
        InstanceIds=[instance_id],
        DocumentName=document,
        Parameters={name: [value] for name, value in parameters.items()},
        CloudWatchOutputConfig={"CloudWatchOutputEnabled": True, "CloudWatchLogGroupName": "/builds"},
    )
    return command["Command"]["CommandId"]


def _result(aws: dict[str, Any], command_id: str, instance_id: str, plugin: str = "Probe") -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        result = aws["ssm"].get_command_invocation(CommandId=command_id, InstanceId=instance_id, PluginName=plugin)
        if result["Status"] not in ("Pending", "InProgress"):
            return result
        assert time.monotonic() < deadline, "the command never finished"
        time.sleep(0.05)


def test_instances_register_after_the_scaled_delay_with_the_launch_templates_profile(aws):
    started = time.monotonic()
    instance_ids = _launch(aws, count=2)

    assert _online(aws, instance_ids) == []
    while len(_online(aws, instance_ids)) < 2:
        assert time.monotonic() - started < 10
        time.sleep(0.05)
    assert time.monotonic() - started >= 20 * SCALE
    info = aws["ssm"].describe_instance_information(
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": instance_ids[1:]}]
    )["InstanceInformationList"]
    assert [(i["InstanceId"], i["PlatformType"], i["AgentVersion"], i["ResourceType"]) for i in info] == [
        (instance_ids[1], "Linux", "3.3.2746.0", "EC2Instance")
    ]


def test_send_command_to_an_unregistered_instance_is_rejected(aws):
    [instance_id] = _launch(aws)

    with pytest.raises(ClientError) as error:
        _send(aws, instance_id, Value="x")

    assert error.value.response["Error"]["Code"] == "InvalidInstanceId"


def test_env_var_parameters_are_data_never_script(aws, tmp_path, events):
    marker = tmp_path / "executed"
    hostile = HOSTILE.format(marker=marker)
    [instance_id, _bystander] = _registered(aws, count=2)

    command_id = _send(aws, instance_id, Value=hostile)
    result = _result(aws, command_id, instance_id)

    assert result["Status"] == "Success" and result["ResponseCode"] == 0
    assert result["StandardOutputContent"] == f"{hostile}\nliteral={{{{ Value }}}}\n"
    assert result["StandardErrorContent"] == "to-stderr\n"
    assert not marker.exists()
    invocations = aws["ssm"].list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert [i["InstanceId"] for i in invocations] == [instance_id]  # not the bystander (moto's Targets bug)
    statuses = [e["detail"]["status"] for e in events if e["detail"]["command-id"] == command_id]
    assert statuses == ["Pending", "InProgress", "Success"]
    assert events[-1]["detail-type"] == "EC2 Command Invocation Status-change Notification"
    stream = f"{command_id}/{instance_id}/Probe/stdout"
    logged = aws["logs"].get_log_events(logGroupName="/builds", logStreamName=stream)["events"]
    assert [event["message"] for event in logged] == [f"{hostile}\nliteral={{{{ Value }}}}"]


def test_exit_code_and_skipped_step(aws):
    [instance_id] = _registered(aws)

    command_id = _send(aws, instance_id, Value="v", ExitCode="7")
    result = _result(aws, command_id, instance_id)
    skipped = _result(aws, command_id, instance_id, plugin="ProbeWindows")

    assert (result["Status"], result["ResponseCode"]) == ("Failed", 7)
    assert "exit status 7" in result["StandardErrorContent"]
    assert (skipped["Status"], skipped["ResponseCode"]) == ("Success", 0)
    assert "skipped due to unsatisfied preconditions" in skipped["StandardOutputContent"]
    with pytest.raises(ClientError) as error:
        aws["ssm"].get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    assert error.value.response["Error"]["Code"] == "InvalidPluginName"  # two steps: PluginName is required


def test_list_commands_filters_by_stage_document_and_time_and_pages(aws):
    [instance_id] = _registered(aws)
    before = datetime.now(UTC) - timedelta(seconds=1)
    ended = [_send(aws, instance_id, Value="v", ExitCode=str(code)) for code in (0, 3)]
    for command_id in ended:
        _result(aws, command_id, instance_id)
    running = _send(aws, instance_id, Value="v", Sleep="30")
    ours = {"key": "DocumentName", "value": "probe"}
    since = {"key": "InvokedAfter", "value": before.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def listed(*filters: dict[str, str], **extra: Any) -> list[str]:
        # This test's instance only: the module's other tests send the same document.
        paginator = aws["ssm"].get_paginator("list_commands")
        pages = paginator.paginate(InstanceId=instance_id, Filters=list(filters), **extra)
        return [command["CommandId"] for page in pages for command in page["Commands"]]

    assert set(listed(ours, since, {"key": "ExecutionStage", "value": "Complete"})) == set(ended)
    assert listed(ours, since, {"key": "ExecutionStage", "value": "Executing"}) == [running]
    assert listed(ours, since, {"key": "Status", "value": "Failed"}) == [ended[1]]
    assert listed(ours, {"key": "InvokedAfter", "value": "2999-01-01T00:00:00Z"}) == []
    first = aws["ssm"].list_commands(InstanceId=instance_id, Filters=[ours, since], MaxResults=1)
    assert len(first["Commands"]) == 1 and first["NextToken"]
    assert set(listed(ours, since, PaginationConfig={"PageSize": 1})) == {*ended, running}
    with pytest.raises(ClientError) as error:
        aws["ssm"].list_commands(Filters=[{"key": "Colour", "value": "blue"}])
    assert error.value.response["Error"]["Code"] == "InvalidFilterKey"
    aws["ssm"].cancel_command(CommandId=running)


def test_execution_timeout_is_enforced_in_aws_time(aws):
    [instance_id] = _registered(aws)
    started = time.monotonic()

    command_id = _send(aws, instance_id, Value="v", Sleep="30", executionTimeout="20")
    result = _result(aws, command_id, instance_id)

    assert result["Status"] == "TimedOut"
    assert time.monotonic() - started < 10  # 20 AWS seconds, not the step's 30 real seconds


def test_windows_instances_fail_with_a_clear_message(aws):
    [instance_id] = _registered(aws, windows=True)

    command_id = _send(aws, instance_id, Value="v")
    result = _result(aws, command_id, instance_id, plugin="ProbeWindows")

    assert result["Status"] == "Failed"
    assert "cannot run Windows (aws:runPowerShellScript) steps" in result["StandardErrorContent"]


def test_the_real_build_document_runs_the_linux_script(aws):
    content = rendered.ssm_document()  # as Terraform renders it (modules/ssm_document_content)
    aws["ssm"].create_document(Name="build", Content=content, DocumentType="Command", DocumentFormat="JSON")
    [instance_id] = _registered(aws)

    command_id = _send(aws, instance_id, "build", Command='echo "building $JobId in $PWD"', JobId=JOB_ID)
    result = _result(aws, command_id, instance_id, plugin="BuildOnLinux")

    assert result["Status"] == "Success", result["StandardErrorContent"]
    assert f"building {JOB_ID} in " in result["StandardOutputContent"]
    assert result["StandardOutputContent"].rstrip().endswith("ec2-action: done")


def _every_event(aws: dict[str, Any], stream: str) -> list[str]:
    """The messages of every event of a stream of /builds, first to last."""
    request: dict[str, Any] = {"logGroupName": "/builds", "logStreamName": stream, "startFromHead": True}
    messages: list[str] = []
    while True:
        page = aws["logs"].get_log_events(**request)
        messages += [event["message"] for event in page["events"]]
        if page["nextForwardToken"] == request.get("nextToken"):
            return messages
        request["nextToken"] = page["nextForwardToken"]


def test_long_output_is_cut_in_the_invocation_and_whole_in_cloudwatch_before_the_end_shows(aws):
    [instance_id] = _registered(aws)
    count = 100_000
    stdout = "".join(f"line {i}\n" for i in range(1, count + 1))

    command_id = _send(aws, instance_id, "printer", Count=str(count))
    result = _result(aws, command_id, instance_id, plugin="Print")

    # The agent's cut: 24,000 bytes with its marker; the service's: the first 8,000 characters of stderr.
    assert result["StandardOutputContent"] == stdout[: 24_000 - 20] + "--output truncated--"
    assert result["StandardErrorContent"] == "".join(f"error {i}\n" for i in range(1, count + 1))[:8_000]
    # Read as soon as the status shows the end: CloudWatch already has every line, in multi-line events of at most
    # 200,000 characters that each end at a line end (the newline dropped).
    prefix = f"{command_id}/{instance_id}/Print"
    events = _every_event(aws, f"{prefix}/stdout")
    assert len(events) > 1 and all(len(event) <= 200_000 for event in events)
    assert "\n".join(events) + "\n" == stdout
    assert _every_event(aws, f"{prefix}/stderr")[-1].endswith(f"error {count}")


def _note(aws: dict[str, Any], instance_id: str, line: str) -> str:
    """Append `line` to the instance's $HOME/notes; the file as the command printed it."""
    result = _result(aws, _send(aws, instance_id, "notes", Line=line), instance_id, plugin="Note")
    assert result["Status"] == "Success", result["StandardErrorContent"]
    return result["StandardOutputContent"]


def _ping(aws: dict[str, Any], instance_id: str) -> str:
    filters = [{"Key": "InstanceIds", "Values": [instance_id]}]
    [info] = aws["ssm"].describe_instance_information(Filters=filters)["InstanceInformationList"]
    return info["PingStatus"]


def _state(aws: dict[str, Any], instance_id: str) -> str:
    [reservation] = aws["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def test_an_instances_files_persist_across_its_commands_and_no_other_instance_sees_them(aws):
    first, second = _registered(aws, count=2)

    assert _note(aws, first, "one") == "one\n"
    assert _note(aws, first, "two") == "one\ntwo\n"
    assert _note(aws, second, "three") == "three\n"


def test_a_stopped_instance_is_connection_lost_and_comes_back_online_after_its_start_and_reconnect(aws):
    [instance_id] = _registered(aws)
    _note(aws, instance_id, "before the stop")

    aws["ec2"].stop_instances(InstanceIds=[instance_id])
    assert _ping(aws, instance_id) == "ConnectionLost"
    with pytest.raises(ClientError) as while_stopping:
        _send(aws, instance_id, "notes", Line="lost")
    while _state(aws, instance_id) != "stopped":
        time.sleep(0.05)
    started = time.monotonic()
    aws["ec2"].start_instances(InstanceIds=[instance_id])
    with pytest.raises(ClientError) as while_starting:
        _send(aws, instance_id, "notes", Line="lost")
    while _ping(aws, instance_id) != "Online":
        assert time.monotonic() - started < 10, "the agent never came back"
        time.sleep(0.02)

    assert time.monotonic() - started >= 0.9 * (START_DELAY + RECONNECT_DELAY) * SCALE
    assert _state(aws, instance_id) == "running"
    assert while_stopping.value.response["Error"]["Code"] == "InvalidInstanceId"
    assert while_starting.value.response["Error"]["Code"] == "InvalidInstanceId"
    assert _note(aws, instance_id, "after the start") == "before the stop\nafter the start\n", "a stop loses no file"


def test_a_terminated_instances_disk_goes(aws):
    [instance_id] = _registered(aws)
    _note(aws, instance_id, "kept until terminate")
    assert (ssm_agent.disk(instance_id) / "home" / "notes").exists()

    aws["ec2"].terminate_instances(InstanceIds=[instance_id])

    assert not ssm_agent.disk(instance_id).exists()


def _status(aws: dict[str, Any], command_id: str, instance_id: str) -> dict[str, Any]:
    return aws["ssm"].get_command_invocation(CommandId=command_id, InstanceId=instance_id, PluginName="Probe")


def _running(aws: dict[str, Any], command_id: str, instance_id: str) -> None:
    deadline = time.monotonic() + 10
    while not ssm_agent.running(command_id, instance_id):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)


def test_a_command_whose_instance_is_terminated_is_never_reported_by_its_agent_and_times_out(aws, events):
    [instance_id] = _registered(aws)
    command_id = _send(aws, instance_id, Value="v", Sleep="60", executionTimeout="40")
    _running(aws, command_id, instance_id)
    started = time.monotonic()

    aws["ec2"].terminate_instances(InstanceIds=[instance_id])

    time.sleep(20 * SCALE)  # half the execution timeout: the agent died with its instance, nothing reports the step
    assert not ssm_agent.running(command_id, instance_id)  # its process went with the instance
    assert _status(aws, command_id, instance_id)["Status"] == "InProgress"
    result = _result(aws, command_id, instance_id)
    assert time.monotonic() - started >= 30 * SCALE
    assert (result["Status"], result["StatusDetails"], result["ResponseCode"]) == (
        "TimedOut",
        "Execution Timed Out",
        -1,
    )
    assert result["StandardOutputContent"] == result["StandardErrorContent"] == ""  # never uploaded
    statuses = [e["detail"]["status"] for e in events if e["detail"]["command-id"] == command_id]
    assert statuses == ["Pending", "InProgress", "TimedOut"]


def test_cancelling_a_command_whose_instance_is_terminated_ends_it(aws, events):
    [instance_id] = _registered(aws)
    command_id = _send(aws, instance_id, Value="v", Sleep="60", executionTimeout="3600")
    _running(aws, command_id, instance_id)
    aws["ec2"].terminate_instances(InstanceIds=[instance_id])
    time.sleep(0.3)
    assert _status(aws, command_id, instance_id)["Status"] == "InProgress"

    aws["ssm"].cancel_command(CommandId=command_id)

    assert _result(aws, command_id, instance_id)["Status"] == "Cancelled"
    statuses = [e["detail"]["status"] for e in events if e["detail"]["command-id"] == command_id]
    assert statuses == ["Pending", "InProgress", "Cancelled"]
