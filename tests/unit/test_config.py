import json

import pytest

from ec2_action import config
from harness import rendered

LINUX = {
    "category": "Build", "provider": "EC2-Linux", "versions": ["1"], "image_id": None, "instance_type": "t3.large",
    "timeout_minutes": 60, "root_volume_size_gib": None,
}  # fmt: skip
# modules/lambda_config's inputs; SETTINGS is what Terraform renders from them (harness/rendered.py).
VARIABLES = {
    "name_prefix": "ec2-build",
    "actions": {"linux": LINUX},
    "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:ec2-build-job",
    "jobs_table_name": "ec2-build-jobs",
    "document_name": "ec2-build-run-build",
    "build_log_group_name": "/ec2-build/builds",
    "launch_template_id": "lt-0123",
    "subnet_ids": ["subnet-a", "subnet-b"],
    "security_group_ids": ["sg-1"],
    "allowed_image_ids": [],
    "allowed_image_owners": ["amazon", "self"],
    "allowed_instance_types": ["t3.*"],
    "default_build_timeout_minutes": 60,
    "max_build_timeout_minutes": 480,
    "ssm_registration_timeout_minutes": 15,
    "poll_function_name": "ec2-build-poll",
    "orphan_grace_minutes": 30,
}
SETTINGS = rendered.lambda_config(VARIABLES)


def test_parses_the_design_example() -> None:
    parsed = config.parse(json.dumps(SETTINGS))
    assert parsed.subnet_ids == ("subnet-a", "subnet-b")
    assert parsed.max_timeout_minutes == 480
    action = parsed.actions[0]
    assert action.type_id == {"category": "Build", "owner": "Custom", "provider": "EC2-Linux", "version": "1"}
    assert action.defaults == {"InstanceType": "t3.large", "TimeoutMinutes": 60}  # null defaults are no defaults


def test_finds_the_action_of_a_job_or_event() -> None:
    parsed = config.parse(json.dumps(SETTINGS))
    event_type = {"owner": "Custom", "category": "Build", "provider": "EC2-Linux", "version": "1"}
    assert parsed.action(event_type) is parsed.actions[0]
    assert parsed.action({**event_type, "version": "2"}) is None


def test_every_served_version_is_an_action_type_with_the_actions_defaults() -> None:
    windows = {
        "category": "Test", "provider": "EC2-Windows", "versions": ["3", "2"], "image_id": "ami-0123456789abcdef0",
        "instance_type": None, "timeout_minutes": None, "root_volume_size_gib": None,
    }  # fmt: skip
    parsed = config.parse(
        json.dumps(rendered.lambda_config({**VARIABLES, "actions": {"linux": LINUX, "win": windows}}))
    )

    assert [(action.provider, action.version) for action in parsed.actions] == [
        ("EC2-Linux", "1"),
        ("EC2-Windows", "3"),
        ("EC2-Windows", "2"),
    ]
    event_type = {"owner": "Custom", "category": "Test", "provider": "EC2-Windows"}
    current, previous = parsed.action({**event_type, "version": "3"}), parsed.action({**event_type, "version": "2"})
    assert current is not None and previous is not None
    assert (current.version, previous.version) == ("3", "2")
    assert current.defaults == previous.defaults == {"ImageId": "ami-0123456789abcdef0"}
    assert parsed.action({**event_type, "version": "1"}) is None  # a version no longer served
    assert parsed.action({**event_type, "category": "Build", "version": "3"}) is None


def test_config_is_immutable() -> None:
    parsed = config.parse(json.dumps(SETTINGS))
    with pytest.raises(AttributeError):
        parsed.stack = "other"  # type: ignore[misc]


def test_missing_key_is_named() -> None:
    broken = {k: v for k, v in SETTINGS.items() if k != "jobs_table"}
    with pytest.raises(KeyError, match=r"jobs_table"):
        config.parse(json.dumps(broken))


def test_loaded_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    config.load.cache_clear()
    monkeypatch.setenv(config.ENV_VAR, json.dumps(SETTINGS))
    first = config.load()
    monkeypatch.setenv(config.ENV_VAR, json.dumps({**SETTINGS, "stack": "changed"}))
    assert config.load() is first
    config.load.cache_clear()


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_the_partition_is_read_from_the_state_machine_arn(partition: str) -> None:
    arn = f"arn:{partition}:states:us-east-1:123456789012:stateMachine:ec2-build-job"
    assert config.parse(json.dumps({**SETTINGS, "state_machine_arn": arn})).partition == partition
