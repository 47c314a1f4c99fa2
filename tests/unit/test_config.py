import json
import re

import pytest

from ec2_action import config
from harness import rendered
from harness.terraform import TerraformError

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
    "launch_templates": {"Linux": {"id": "lt-0123", "version": "4"}, "Windows": {"id": "lt-0456", "version": "2"}},
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
    "pool_table_name": "ec2-build-pool",
    "keeper_function_name": "ec2-build-keeper",
}
SETTINGS = rendered.lambda_config(VARIABLES)


def test_parses_the_design_example() -> None:
    parsed = config.parse(json.dumps(SETTINGS))
    assert parsed.subnet_ids == ("subnet-a", "subnet-b")
    assert parsed.max_timeout_minutes == 480
    action = parsed.actions[0]
    assert action.type_id == {"category": "Build", "owner": "Custom", "provider": "EC2-Linux", "version": "1"}
    assert action.defaults == {"InstanceType": "t3.large", "TimeoutMinutes": 60}  # null defaults are no defaults
    # An action that says nothing of its capacity: today's behaviour, every job its own instance, 10 at a time.
    assert (action.key, action.strategy, action.cap, action.pool) == ("linux", "ephemeral", 10, None)
    assert not action.pooled
    assert (parsed.pool_table, parsed.keeper_function_name) == ("ec2-build-pool", "ec2-build-keeper")
    assert parsed.launch_template("Linux") == ("lt-0123", "4")
    assert parsed.launch_template("Windows") == ("lt-0456", "2")
    # An action that says nothing of how it is bought: on-demand, its InstanceType default alone.
    assert (action.instance_types, action.purchase_option, action.allocation_strategy) == (
        (),
        "on-demand",
        "prioritized",
    )
    assert action.interruptions_before_on_demand == 2
    assert action.default_instance_types() == ("t3.large",)


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


def render(**action: object) -> config.Config:
    """The configuration Terraform renders for the one Linux action with these attributes changed."""
    return config.parse(json.dumps(rendered.lambda_config({**VARIABLES, "actions": {"linux": {**LINUX, **action}}})))


def test_a_warm_pool_with_a_schedule_is_parsed_with_its_settings() -> None:
    schedule = [
        {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "from_hour": 7, "to_hour": 19, "min_ready": 3},
        {"days": ["Sat"], "from_hour": 0, "to_hour": 24, "min_ready": 1},
    ]
    parsed = render(
        strategy="warm",
        max_concurrent_builds=6,
        pool={"min_ready": 1, "schedule": schedule, "timezone": "Europe/Paris", "max_builds": 20,
              "reset_command": "docker image prune -f"},
    )  # fmt: skip

    action = parsed.actions[0]
    assert (action.strategy, action.cap, action.pooled) == ("warm", 6, True)
    assert action.pool == config.PoolSettings(
        min_ready=1,
        schedule=(
            config.Window(("Mon", "Tue", "Wed", "Thu", "Fri"), 7, 19, 3),
            config.Window(("Sat",), 0, 24, 1),
        ),
        timezone="Europe/Paris",
        hibernate=False,  # the defaults of the settings left out
        max_builds=20,
        max_age_hours=168,
        max_idle_minutes=10,
        reset_command="docker image prune -f",
    )


def test_a_stopped_pool_left_at_its_defaults() -> None:
    action = render(strategy="stopped", pool={"hibernate": True}).actions[0]
    assert action.pool == config.PoolSettings(0, (), "UTC", True, 50, 168, 10, "")


def test_an_ephemeral_action_has_no_pool_even_with_pool_settings() -> None:
    """Pool settings on an ephemeral action are not rendered: nothing outlives its build there."""
    settings = rendered.lambda_config({**VARIABLES, "actions": {"linux": {**LINUX, "pool": {"max_builds": 5}}}})
    assert settings["actions"][0]["pool"] is None
    assert config.parse(json.dumps(settings)).actions[0].pool is None


def test_the_pool_settings_stay_compact() -> None:
    """EC2_ACTION_CONFIG must stay under 3,500 bytes: the pool's keys are short."""
    settings = rendered.lambda_config(
        {**VARIABLES, "actions": {"linux": {**LINUX, "strategy": "warm", "pool": {"min_ready": 2}}}}
    )
    assert settings["actions"][0]["pool"] == {
        "min": 2, "schedule": [], "tz": "UTC", "hibernate": False, "max_builds": 50, "max_age_h": 168,
        "idle_min": 10, "reset": "",
    }  # fmt: skip
    assert settings["actions"][0]["cap"] == 10 and settings["actions"][0]["key"] == "linux"


def test_one_action_type_per_key_whatever_its_versions() -> None:
    windows = {
        "category": "Test", "provider": "EC2-Windows", "versions": ["3", "2"], "image_id": "ami-0123456789abcdef0",
        "instance_type": "m6i.large", "timeout_minutes": None, "root_volume_size_gib": None, "strategy": "stopped",
        "max_concurrent_builds": 4,
    }  # fmt: skip
    parsed = config.parse(
        json.dumps(rendered.lambda_config({**VARIABLES, "actions": {"linux": LINUX, "win": windows}}))
    )
    by_key = parsed.actions_by_key()
    assert list(by_key) == ["linux", "win"]
    assert by_key["win"].version == "3" and by_key["win"].cap == 4
    assert (
        parsed.action({"owner": "Custom", "category": "Test", "provider": "EC2-Windows", "version": "2"}).key == "win"
    )  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"strategy": "spot"}, "strategy must be ephemeral, warm or stopped"),
        ({"max_concurrent_builds": 0}, "a cap of 0 would queue every job forever"),
        ({"strategy": "warm", "max_concurrent_builds": 2, "pool": {"min_ready": 3}}, "cannot exceed its cap"),
    ],
)
def test_impossible_capacity_is_refused_by_terraform(action: dict[str, object], message: str) -> None:
    with pytest.raises(TerraformError, match=r"\s+".join(map(re.escape, message.split()))):  # Terraform wraps lines
        rendered.lambda_config({**VARIABLES, "actions": {"linux": {**LINUX, **action}}})


def test_a_spot_action_is_parsed_with_its_types_and_its_resolved_allocation_strategy() -> None:
    action = render(instance_types=["m6i.large", "t3.large", "t3.xlarge"], purchase_option="spot-then-on-demand",
                    interruptions_before_on_demand=1).actions[0]  # fmt: skip
    assert action.instance_types == ("m6i.large", "t3.large", "t3.xlarge")
    assert (action.purchase_option, action.allocation_strategy) == ("spot-then-on-demand", "price-capacity-optimized")
    assert action.interruptions_before_on_demand == 1
    assert action.default_instance_types() == ("t3.large", "m6i.large", "t3.xlarge")  # the default first, once
    assert render(purchase_option="spot", allocation_strategy="capacity-optimized").actions[0].allocation_strategy == (
        "capacity-optimized"
    )


def test_the_purchase_settings_stay_compact() -> None:
    settings = rendered.lambda_config({**VARIABLES, "actions": {"linux": {**LINUX, "purchase_option": "spot"}}})
    action = settings["actions"][0]
    assert {key: action[key] for key in ("types", "purchase", "alloc", "od_after")} == {
        "types": [], "purchase": "spot", "alloc": "price-capacity-optimized", "od_after": 2,
    }  # fmt: skip


def test_an_action_rendered_without_the_purchase_keys_is_on_demand() -> None:
    """A configuration of an older module (no types, purchase, alloc or od_after): today's behaviour."""
    settings = json.loads(json.dumps(SETTINGS))
    for key in ("types", "purchase", "alloc", "od_after"):
        settings["actions"][0].pop(key, None)
    action = config.parse(json.dumps(settings)).actions[0]
    assert (action.instance_types, action.purchase_option, action.allocation_strategy) == (
        (),
        "on-demand",
        "prioritized",
    )
    assert action.interruptions_before_on_demand == 2
