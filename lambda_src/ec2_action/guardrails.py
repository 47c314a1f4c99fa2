"""Pure checks of a job's configuration. Each raises Invalid with a message that names the property, says what is
wrong and what is allowed; validate collects them so one failure report lists every problem."""

from __future__ import annotations

import fnmatch
import re

AMI_ID = re.compile(r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$")
DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
MAX_COMMAND_CHARS = 1000  # the SSM document's allowedPattern for Command
MIN_ROOT_GIB, MAX_ROOT_GIB = 8, 16384
MAX_INSTANCE_TYPES = 20  # as many as the module's instance_types variable allows


class Invalid(ValueError):
    """One configuration property breaks a rule."""


def image_id(value: str) -> str:
    if not value:
        raise Invalid("ImageId is missing: set it on the action, or give the action type a default AMI.")
    if not AMI_ID.match(value):
        raise Invalid(f"ImageId '{value}' is not an AMI id: expected 'ami-' followed by 8 or 17 hex digits.")
    return value


def instance_type_list(value: str) -> tuple[str, ...]:
    """The types of an InstanceType property: one type or a comma-separated list, each stripped, empty entries and
    repeats dropped, the order kept (the order of preference)."""
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


def instance_types(value: str | tuple[str, ...], allowed: tuple[str, ...]) -> list[str]:
    """The job's instance types (the InstanceType property, or the action's defaults as a tuple), each allowed."""
    types = instance_type_list(value) if isinstance(value, str) else tuple(dict.fromkeys(value))
    if not types:
        raise Invalid("InstanceType is missing: set it on the action, or give the action type a default.")
    if len(types) > MAX_INSTANCE_TYPES:
        raise Invalid(f"InstanceType lists {len(types)} types: at most {MAX_INSTANCE_TYPES} are allowed.")
    refused = [t for t in types if not any(fnmatch.fnmatchcase(t, pattern) for pattern in allowed)]
    if refused:
        named = ", ".join(f"'{t}'" for t in refused)
        verb = "is" if len(refused) == 1 else "are"
        raise Invalid(f"InstanceType {named} {verb} not allowed: this module allows {', '.join(allowed) or 'none'}.")
    return list(types)


def _whole_number(name: str, value: str | int, low: int, high: int, unit: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise Invalid(f"{name} '{value}' is not allowed: expected a whole number of {unit} from {low} to {high}.")
    return int(text)


def timeout_minutes(value: str | int, maximum: int) -> int:
    return _whole_number("TimeoutMinutes", value, 1, maximum, "minutes")


def root_volume_gib(value: str | int) -> int:
    return _whole_number("RootVolumeGiB", value, MIN_ROOT_GIB, MAX_ROOT_GIB, "GiB")


def command(value: str) -> str:
    if not value.strip():
        raise Invalid("Command is empty: give the build script to run (bash on Linux, PowerShell on Windows).")
    if len(value) > MAX_COMMAND_CHARS:
        raise Invalid(
            f"Command is {len(value)} characters long: at most {MAX_COMMAND_CHARS} are allowed; "
            "put a longer script in the source and run it from there."
        )
    return value


def single_line(name: str, value: str) -> str:
    if "\n" in value or "\r" in value or "\x00" in value:
        raise Invalid(f"{name} contains a line break or NUL character: it must be a single-line path.")
    return value


def relative_path(name: str, value: str) -> str:
    single_line(name, value)
    if value.startswith(("/", "\\")) or DRIVE_LETTER.match(value):
        raise Invalid(f"{name} '{value}' is absolute: it must be relative to the working directory.")
    if ".." in re.split(r"[\\/]", value):
        raise Invalid(f"{name} '{value}' contains a '..' segment: it must stay inside the working directory.")
    return value


# --- Windows and architecture: checked against the AMI DescribeImages returned (the platform is only known then) -----

# A Windows build's root volume, at least: the Windows Server AMIs' 30 GiB system volume plus room for container base
# images (servercore:ltsc2022 is a 3.85 GB download, larger once extracted, and Docker holds both during a pull) and
# the build's own layers. The module's default root_volume_size_gib.
WINDOWS_MIN_ROOT_GIB = 50
# AWS: a Windows instance with more memory than this cannot hibernate (Linux: below 150 GiB).
WINDOWS_HIBERNATION_MAX_MEMORY_GIB = 16
# AWS: the oldest Windows AMIs that support hibernation, by Windows Server version (any other version: the oldest).
WINDOWS_HIBERNATION_SINCE = {"2022": "2023-09-13", "": "2019-09-11"}
# AWS's instance naming: a "g" among a family's attributes (right after its generation) is a Graviton processor (a1:
# the first Graviton). mac1 is Intel, later mac families Apple silicon.
GRAVITON_FAMILY = re.compile(r"^(a1|[a-z]+[0-9]+g[a-z]*(-[a-z0-9]+)?)$")
# Memory per vCPU of the hibernation families (variables.tf lists them), by family; the current generations by class.
GIB_PER_VCPU = {"c3": 1.875, "c4": 1.875, "m3": 3.75, "r3": 7.625, "r4": 7.625, "i3": 7.625, "c": 2, "m": 4, "r": 8}
BURSTABLE_GIB = {"nano": 0.5, "micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
SIZE_VCPUS = re.compile(r"^(?:(medium)|(large)|([0-9]*)xlarge)$")


def instance_architecture(value: str) -> str:
    """The architecture an instance type runs, in DescribeImages' words (x86_64, arm64, x86_64_mac, arm64_mac)."""
    family = value.split(".")[0]
    if family == "mac1":
        return "x86_64_mac"
    if family.startswith("mac"):
        return "arm64_mac"
    return "arm64" if GRAVITON_FAMILY.match(family) else "x86_64"


def architecture(instance_type_name: str, image_id_value: str, image_architecture: str) -> None:
    """The instance type must run the AMI's architecture (a 32-bit i386 AMI runs on x86_64 types): EC2 refuses the
    launch otherwise, after the capacity was taken."""
    runs = instance_architecture(instance_type_name)
    if not image_architecture or image_architecture == runs or (image_architecture == "i386" and runs == "x86_64"):
        return
    wanted = (
        "a Graviton type such as t4g, m7g or c7g" if image_architecture == "arm64" else "a type of that architecture"
    )
    raise Invalid(
        f"InstanceType '{instance_type_name}' runs {runs} but ImageId {image_id_value} is {image_architecture}: "
        f"use {wanted}, or an AMI built for {runs}."
    )


def memory_gib(value: str) -> float | None:
    """The memory of an instance type of a hibernation family (variables.tf), or None when this table cannot tell
    (another family, a .metal size)."""
    family, _, size = value.partition(".")
    if family in ("t2", "t3", "t3a"):
        return BURSTABLE_GIB.get(size)
    per_vcpu = GIB_PER_VCPU.get(family) or GIB_PER_VCPU.get(family[:1])
    sized = SIZE_VCPUS.match(size)
    if per_vcpu is None or sized is None:
        return None
    medium, large, multiple = sized.groups()
    vcpus = 1 if medium else 2 if large else 4 * int(multiple or 1)
    return vcpus * per_vcpu


def windows_hibernation(instance_type_name: str, image_id_value: str, image_name: str, created: str) -> None:
    """A hibernating pool on Windows: AWS hibernates a Windows instance of at most 16 GiB of memory, from a Windows
    Server 2022 AMI released 2023-09-13 or later (older versions: 2019-09-11). EC2 refuses the launch otherwise."""
    memory = memory_gib(instance_type_name)
    if memory is None or memory > WINDOWS_HIBERNATION_MAX_MEMORY_GIB:
        has = f"has {memory:g} GiB of memory" if memory is not None else "is not known here to have at most 16 GiB"
        raise Invalid(
            f"InstanceType '{instance_type_name}' {has}: a hibernating pool on Windows needs at most "
            f"{WINDOWS_HIBERNATION_MAX_MEMORY_GIB} GiB (e.g. m5.xlarge, c5.2xlarge, r5.large, t3.xlarge); "
            "use such a type, or a stopped pool without hibernate."
        )
    version = "2022" if "2022" in image_name else ""
    since = WINDOWS_HIBERNATION_SINCE[version]
    if created and created[:10] < since:
        raise Invalid(
            f"ImageId {image_id_value} was created on {created[:10]}: a hibernating pool on Windows"
            f"{' Server 2022' if version else ''} needs an AMI from {since} or later; use a newer AMI, or a stopped "
            "pool without hibernate."
        )


def windows_root_volume_gib(value: int) -> int:
    if value < WINDOWS_MIN_ROOT_GIB:
        raise Invalid(
            f"RootVolumeGiB {value} is too small for a Windows build: use at least {WINDOWS_MIN_ROOT_GIB} (the "
            "Windows AMIs' 30 GiB system volume plus room for container base images and the build's layers)."
        )
    return value
