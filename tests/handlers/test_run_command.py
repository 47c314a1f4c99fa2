"""run_command against the local cloud's SSM Agent: the command really runs the deployed document's Linux step."""

import time
from typing import Any

import pytest
from conftest import Agent, Cloud, build_spec, make_job

from ec2_action import errors, jobs
from ec2_action.config import load
from ec2_action.errors import InstanceLost, InstanceNotReady, SpotInterrupted
from ec2_action.handlers import acquire, run_command, wait_online


def online_instance(cloud: Cloud, job: dict[str, Any]) -> dict[str, Any]:
    """The job's build instance, launched (acquire) and Online in Systems Manager (wait_online); the tests' builds
    take their command and spec from build_spec, so acquire validates a runnable configuration of the job."""
    jobs.claim(
        job["id"], "1", f"arn:aws:states:us-east-1:123456789012:execution:m:{job['id']}", "{}", job["action"], "app"
    )
    runnable = {**job, "configuration": {"Command": "true", "ImageId": cloud.linux_ami}}
    state = acquire.handler({"job": runnable, "execution_arn": "arn"}, cloud.context)
    event = {"job_id": job["id"], "build": state["build"], "instance": state["instance"]}
    assert wait_online.handler(event, cloud.context)["online"] is True
    return state["instance"]


def pooled_instance(cloud: Cloud, job: dict[str, Any], reset_command: str) -> dict[str, Any]:
    """An Online instance serving the job as a member of the action's warm pool, whose reset command is given: the
    instance as acquire outputs it for a pool member (its `kind`)."""
    instance = online_instance(cloud, job)
    cloud.configure(actions=cloud.action_variables(strategy="warm", pool={"reset_command": reset_command}))
    return {**instance, "member_id": "m-0123456789ab", "pool": "build", "kind": "warm", "boot": "launch"}


def test_sends_the_build_after_storing_the_token_and_the_attempts_time(cloud: Cloud, agent: Agent) -> None:
    job = make_job(input_artifact=None, configuration={})
    instance = online_instance(cloud, job)
    build = build_spec(cloud.linux_ami, command="echo built in $PWD; echo $PipelineName", command_timeout_seconds=120)
    event = {"task_token": "token-1", "job": job, "build": build, "instance": instance}

    before = time.time()
    command_id = run_command.handler(event, cloud.context)["command_id"]

    item = cloud.item(job["id"])
    assert (item["task_token"], item["instance_id"], item["plugin_name"]) == (
        "token-1",
        instance["instance_id"],
        "BuildOnLinux",
    )
    assert "command_id" not in item  # the command is found by its comment (the job id), not stored
    command = cloud.client("ssm").list_commands(CommandId=command_id)["Commands"][0]
    # awaited_at: just before SendCommand; tells this attempt's command from an older attempt's (outcome.is_current)
    assert before - 0.001 <= item["awaited_at"] <= command["RequestedDateTime"].timestamp() + 1
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


def test_a_pooled_instance_cleans_up_and_runs_its_pools_reset_command(cloud: Cloud, agent: Agent) -> None:
    job = make_job(input_artifact=None, configuration={})
    instance = pooled_instance(cloud, job, "echo pruning the images of other builds")
    event = {"task_token": "token-3", "job": job, "build": build_spec(cloud.linux_ami, command="echo built"),
             "instance": instance}  # fmt: skip

    command_id = run_command.handler(event, cloud.context)["command_id"]

    parameters = cloud.client("ssm").list_commands(CommandId=command_id)["Commands"][0]["Parameters"]
    assert (parameters["Pooled"], parameters["ResetCommand"]) == (["true"], ["echo pruning the images of other builds"])
    agent.final_event(command_id)
    result = cloud.client("ssm").get_command_invocation(
        CommandId=command_id, InstanceId=instance["instance_id"], PluginName="BuildOnLinux"
    )
    assert result["Status"] == "Success", result["StandardErrorContent"]
    assert result["StandardOutputContent"].endswith(
        "ec2-action: done\nec2-action: running the reset command\npruning the images of other builds\n"
    )


def test_an_ephemeral_instance_leaves_the_pool_parameters_to_the_documents_defaults(cloud: Cloud) -> None:
    cloud.configure(actions=cloud.action_variables(strategy="warm", pool={"reset_command": "docker system prune -f"}))
    config = load()
    job = make_job()

    assert run_command.pool_reset_command(config, job, {"instance_id": "i-1", "kind": "ephemeral"}) is None
    assert run_command.pool_reset_command(config, job, {"instance_id": "i-1"}) is None  # acquire before pools
    assert run_command.pool_reset_command(config, job, {"instance_id": "i-1", "kind": "stopped"}) == (
        "docker system prune -f"
    )
    cloud.configure(actions=cloud.action_variables(strategy="warm", pool={}))
    assert run_command.pool_reset_command(load(), job, {"instance_id": "i-1", "kind": "warm"}) == ""
    assert "Pooled" not in run_command.document_parameters(job, build_spec("ami-0123abcd"), None)
    assert run_command.document_parameters(job, build_spec("ami-0123abcd"), "")["Pooled"] == ["true"]


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
    assert item["task_token"] == "token-2" and item["instance_id"] == instance_id
    assert cloud.client("ssm").list_commands(InstanceId=instance_id)["Commands"] == []


@pytest.mark.parametrize(("lifecycle", "error"), [("spot", SpotInterrupted), ("on-demand", InstanceLost)])
def test_an_instance_terminated_before_the_command_is_interrupted_or_lost_not_unready(
    cloud: Cloud, agent: Agent, lifecycle: str, error: type[Exception]
) -> None:
    """Systems Manager refuses the command (InvalidInstanceId) for a terminated instance as for one not registered
    yet; EC2 tells them apart: no retry waits for an instance that is gone."""
    from test_interruption import launched_instance

    job = make_job(input_artifact=None, configuration={})
    instance = launched_instance(cloud, job, lifecycle)
    cloud.client("ec2").terminate_instances(InstanceIds=[instance["instance_id"]])
    event = {"task_token": "token-4", "job": job, "build": build_spec(cloud.linux_ami), "instance": instance}

    with pytest.raises(error, match=instance["instance_id"]) as raised:
        run_command.handler(event, cloud.context)

    if error is SpotInterrupted:
        assert errors.interruption_of({"Cause": str(raised.value)})["step"] == "RunBuildCommand"
    assert cloud.client("ssm").list_commands(InstanceId=instance["instance_id"])["Commands"] == []
