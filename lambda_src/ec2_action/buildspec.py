"""The build spec: the action's defaults applied to a job, every guardrail and the AMI checked (acquire's first half,
before anything launches)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from . import aws, guardrails, log, pools
from .config import ActionType, Config
from .errors import InvalidJobConfiguration
from .payloads import BuildSpec, Job

ARTIFACT_TRANSFER_SECONDS = 900


def validated(config: Config, job: Job, context: Any) -> BuildSpec:
    """The job's build spec; InvalidJobConfiguration lists every problem found."""
    try:
        build = _build_spec(config, job, _own_account(context))
    except InvalidJobConfiguration as exc:
        log.warning("invalid job configuration", reason=str(exc))
        raise
    log.info("job valid", build={k: v for k, v in build.items() if k != "command"})
    return build


def _own_account(context: Any) -> str:
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _settings(config: Config, job: Job) -> dict[str, str]:
    """The job's configuration over the action type's defaults; every value a string, as CodePipeline sends them."""
    action = config.action(job["action"])
    defaults = {"TimeoutMinutes": config.default_timeout_minutes, **(action.defaults if action else {})}
    given = {key: value for key, value in (job.get("configuration") or {}).items() if value not in (None, "")}
    return {key: str(value) for key, value in {**defaults, **given}.items()}


def _build_spec(config: Config, job: Job, own_account: str) -> BuildSpec:
    settings = _settings(config, job)
    action = config.action(job["action"])
    problems: list[str] = []

    def check(rule: Callable[..., Any], *args: Any) -> Any:
        try:
            return rule(*args)
        except guardrails.Invalid as exc:
            problems.append(str(exc))
            return None

    image_id = check(guardrails.image_id, settings.get("ImageId", ""))
    types = check(guardrails.instance_types, _job_types(job, action), config.allowed_instance_types)
    command = check(guardrails.command, settings.get("Command", ""))
    timeout = check(guardrails.timeout_minutes, settings["TimeoutMinutes"], config.max_timeout_minutes)
    root_gib = check(guardrails.root_volume_gib, settings["RootVolumeGiB"]) if "RootVolumeGiB" in settings else None
    working_directory = check(guardrails.single_line, "WorkingDirectory", settings.get("WorkingDirectory", ""))
    output_path = check(guardrails.relative_path, "OutputArtifactPath", settings.get("OutputArtifactPath", ""))
    output_artifact = job.get("output_artifact")
    if output_artifact and not settings.get("OutputArtifactPath"):
        problems.append(
            f"OutputArtifactPath is missing: the action declares the output artifact "
            f"'{output_artifact['name']}', so name the file or directory to upload as it."
        )
    if not output_artifact and settings.get("OutputArtifactPath"):
        problems.append(
            "OutputArtifactPath is set but the action declares no output artifact: add one to the action, "
            "or remove OutputArtifactPath."
        )
    if image_id and not problems:
        image = _image(config, image_id, own_account)
        snapshot_gib = _root_snapshot_gib(image)
        volume_gib: int = root_gib or max(snapshot_gib, guardrails.MIN_ROOT_GIB)
        if volume_gib < snapshot_gib:
            problems.append(
                f"RootVolumeGiB {volume_gib} is smaller than the root snapshot of {image_id} ({snapshot_gib} GiB): "
                f"use at least {snapshot_gib}."
            )
        problems += _platform_problems(config, job, image, types, volume_gib)
    if problems:
        raise InvalidJobConfiguration("\n".join(problems))
    return {
        "image_id": image_id,
        "instance_type": types[0],
        "instance_types": types,
        "platform": "Windows" if image.get("Platform") == "windows" else "Linux",
        "root_device_name": image["RootDeviceName"],
        "root_volume_gib": volume_gib,
        "timeout_minutes": timeout,
        "command_timeout_seconds": timeout * 60,
        "task_timeout_seconds": timeout * 60 + ARTIFACT_TRANSFER_SECONDS,
        "command": command,
        "working_directory": working_directory,
        "output_artifact_path": output_path,
    }


def _job_types(job: Job, action: ActionType | None) -> str | tuple[str, ...]:
    """The job's InstanceType property (one type or a list) when it sets one, else its action's default types (the
    InstanceType default, then the action's instance_types)."""
    given = str((job.get("configuration") or {}).get("InstanceType") or "")
    if given.strip() or action is None:
        return given
    return action.default_instance_types()


def _platform_problems(
    config: Config, job: Job, image: dict[str, Any], instance_types: list[str], volume_gib: int
) -> list[str]:
    """The rules that need the AMI: each instance type runs its architecture, and on Windows a root volume with room
    for container images and, for a hibernating pool's instance, what AWS allows a Windows instance to hibernate."""
    problems: list[str] = []
    image_id = str(image["ImageId"])
    architecture = str(image.get("Architecture") or "")
    checks: list[Callable[[], Any]] = [
        partial(guardrails.architecture, kind, image_id, architecture) for kind in instance_types
    ]
    if image.get("Platform") == "windows":
        checks.append(lambda: guardrails.windows_root_volume_gib(volume_gib))
        if _hibernates(config, job):
            name, created = str(image.get("Name") or ""), str(image.get("CreationDate") or "")
            checks += [
                partial(guardrails.windows_hibernation, kind, image_id, name, created) for kind in instance_types
            ]
    for rule in checks:
        try:
            rule()
        except guardrails.Invalid as exc:
            problems.append(str(exc))
    return problems


def _hibernates(config: Config, job: Job) -> bool:
    """Whether the job's instance is launched hibernation-enabled: a member of a hibernating pool, which the job
    runs on when it matches the pool's configuration (the keeper's launches always do)."""
    action = config.action(job["action"])
    return bool(
        action is not None
        and action.pool is not None
        and action.pool.hibernate
        and pools.job_matches_pool(action, job.get("configuration") or {})
    )


def _image(config: Config, image_id: str, own_account: str) -> dict[str, Any]:
    region = aws.region()
    try:
        images = aws.client("ec2").describe_images(ImageIds=[image_id])["Images"]
    except ClientError as exc:
        if not aws.error_code(exc).startswith("InvalidAMIID"):
            raise
        images = []
    if not images:
        raise InvalidJobConfiguration(
            f"ImageId {image_id} does not exist in region {region}, or is not shared with this account."
        )
    image: dict[str, Any] = images[0]
    if image.get("State") != "available":
        raise InvalidJobConfiguration(f"ImageId {image_id} is {image.get('State')}: only available AMIs can be used.")
    owners = {str(image[key]) for key in ("OwnerId", "ImageOwnerAlias") if image.get(key) is not None}
    allowed = {own_account if owner == "self" else owner for owner in config.allowed_image_owners}
    if not owners & allowed:
        raise InvalidJobConfiguration(
            f"ImageId {image_id} is owned by {' / '.join(sorted(owners))}, which this module does not allow: "
            f"allowed owners are {', '.join(config.allowed_image_owners) or 'none'}."
        )
    if config.allowed_image_ids and image_id not in config.allowed_image_ids:
        raise InvalidJobConfiguration(
            f"ImageId {image_id} is not in this module's list of allowed AMIs: {', '.join(config.allowed_image_ids)}."
        )
    if not image.get("RootDeviceName"):
        raise InvalidJobConfiguration(f"ImageId {image_id} has no root device: it cannot be launched.")
    return image


def _root_snapshot_gib(image: dict[str, Any]) -> int:
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == image["RootDeviceName"]:
            return int((mapping.get("Ebs") or {}).get("VolumeSize") or 0)
    return 0


def pool_build(config: Config, action: ActionType, context: Any = None) -> BuildSpec:
    """The build spec of a pool member launched with no job (the keeper's): the action's defaults, validated like a
    job's that sets nothing, so that its configuration is the one a matching job's build has."""
    job: Job = {
        "id": f"pool-{action.key}",
        "action": action.type_id,
        "configuration": {"Command": "pool"},
        "pipeline": {"name": "", "arn": "", "execution_id": "", "stage": "", "action": "", "action_execution_id": ""},
        "input_artifact": None,
        "output_artifact": None,
        "encryption_key_id": None,
    }
    return _build_spec(config, job, _own_account(context))
