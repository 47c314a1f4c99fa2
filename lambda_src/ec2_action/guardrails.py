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
