"""run_command against the local cloud's SSM Agent: the command really runs the deployed document's Linux step."""

from typing import Any

import pytest
from conftest import Agent, Cloud, build_spec, make_job, wait_for

from ec2_action import jobs
from ec2_action.errors import InstanceNotReady
from ec2_action.handlers import acquire, check_instance, run_command


def online_instance(cloud: Cloud, job: dict[str, Any]) -> dict[str, Any]:
    """A launched build instance (acquire), Online in Systems Manager (check_instance)."""
    jobs.claim(
        job["id"], "1", f"arn:aws:states:us-east-1:123456789012:execution:m:{job['id']}", "{}", job["action"], "app"
    )
    spec = build_spec(cloud.linux_ami, root_device_name="/dev/sda1")
    instance = acquire.handler({"job": job, "build": spec, "execution_arn": "arn"}, cloud.context)

    def online() -> bool:
        try:
            return check_instance.handler({"instance_id": instance["instance_id"]}, cloud.context)["ping_status"]
        except InstanceNotReady:
            return False

    wait_for(online, what="the instance to come Online")
    return instance


def test_sends_the_build_and_remembers_the_token_and_command(cloud: Cloud, agent: Agent) -> None:
    job = make_job(input_artifact=None, configuration={})
    instance = online_instance(cloud, job)
    build = build_spec(cloud.linux_ami, command="echo built in $PWD; echo $PipelineName", command_timeout_seconds=120)
    event = {"task_token": "token-1", "job": job, "build": build, "instance": instance}

    command_id = run_command.handler(event, cloud.context)["command_id"]

    item = cloud.item(job["id"])
    assert (item["task_token"], item["command_id"], item["plugin_name"]) == ("token-1", command_id, "BuildOnLinux")
    command = cloud.client("ssm").list_commands(CommandId=command_id)["Commands"][0]
    assert command["Comment"] == job["id"]
    assert command["DocumentName"] == cloud.settings["document_name"]
    assert command["InstanceIds"] == [instance["instance_id"]]
    assert command["Parameters"]["JobId"] == [job["id"]]
    assert command["Parameters"]["InputBucket"] == [""]
    assert command["Parameters"]["executionTimeout"] == ["120"]
    agent.final_event(command_id)
    result = cloud.client("ssm").get_command_invocation(
        CommandId=command_id, InstanceId=instance["instance_id"], PluginName="BuildOnLinux"
    )
    assert result["Status"] == "Success", result["StandardErrorContent"]
    assert f"codepipeline-ec2-action/{job['id']}" in result["StandardOutputContent"]
    assert "\napp\n" in result["StandardOutputContent"]
    stream = f"{command_id}/{instance['instance_id']}/BuildOnLinux/stdout"  # what the failure message points to
    logged = cloud.client("logs").get_log_events(logGroupName=cloud.settings["build_log_group"], logStreamName=stream)
    assert "\napp\n" in "\n".join(event["message"] for event in logged["events"])


def test_document_parameters_are_strings_with_empty_defaults() -> None:
    job = make_job(encryption_key_id="arn:aws:kms:us-east-1:123456789012:key/abc")
    parameters = run_command.document_parameters(job, build_spec("ami-0123abcd"))
    assert all(isinstance(v, list) and len(v) == 1 and isinstance(v[0], str) for v in parameters.values())
    assert parameters["KmsKeyId"] == ["arn:aws:kms:us-east-1:123456789012:key/abc"]
    assert parameters["OutputBucket"] == [""] and parameters["WorkingDirectory"] == [""]
    assert parameters["InputBucket"] == ["artifacts-bucket"]
    assert set(parameters) == {
        "Command", "WorkingDirectory", "InputBucket", "InputKey", "OutputBucket", "OutputKey", "OutputArtifactPath",
        "KmsKeyId", "PipelineName", "PipelineExecutionId", "PipelineArn", "JobId", "executionTimeout",
    }  # fmt: skip


def test_unregistered_instance_is_not_ready_and_the_token_is_kept(cloud: Cloud, agent: Agent) -> None:
    job = make_job(input_artifact=None)
    jobs.claim(job["id"], "1", "arn", "{}", job["action"], "app")
    instance_id = cloud.client("ec2").run_instances(ImageId=cloud.linux_ami, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]  # no instance profile: never registers
    event = {"task_token": "token-2", "job": job, "build": build_spec(cloud.linux_ami),
             "instance": {"instance_id": instance_id}}  # fmt: skip
    with pytest.raises(InstanceNotReady, match=instance_id):
        run_command.handler(event, cloud.context)
    item = cloud.item(job["id"])
    assert item["task_token"] == "token-2" and "command_id" not in item
