"""Run the Terraform CLI against a root module without touching the network or the source tree.

Each root gets its own data directory and state file in a work directory, and a CLI configuration that installs
providers from the machine's filesystem mirror when there is one (never from the network in that case).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

# Where a provider mirror may live: an explicit setting first, then the places this project's machines use.
MIRROR_CANDIDATES = (os.environ.get("TF_PROVIDER_MIRROR", ""), "/opt/tf-plugins", "/usr/share/terraform/plugins")


class TerraformError(RuntimeError):
    """A terraform command failed; the message carries its output."""


def provider_mirror() -> Path | None:
    """The first directory that holds a registry.terraform.io provider mirror, if any."""
    for candidate in MIRROR_CANDIDATES:
        if candidate and (Path(candidate) / "registry.terraform.io").is_dir():
            return Path(candidate)
    return None


def write_cli_config(directory: Path, module_registries: Mapping[str, str] | None = None) -> Path:
    """Write a Terraform CLI configuration into directory and return its path.

    With a mirror, providers come only from it (direct installation is excluded, so nothing tries the network).
    module_registries maps a registry hostname to its module registry base URL ("modules.v1"), which Terraform then
    uses without service discovery (so the URL may be plain http, e.g. a registry on loopback).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "terraform.rc"
    mirror = provider_mirror()
    if mirror is None:
        text = "# No provider mirror on this machine: providers install from their registries.\n"
    else:
        text = (
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
            '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
            "}\n"
        )
    for host, url in (module_registries or {}).items():
        text += f'host "{host}" {{\n  services = {{\n    "modules.v1" = "{url}"\n  }}\n}}\n'
    path.write_text(text)
    return path


@dataclass
class TerraformRoot:
    """One root module (e.g. an example) applied with its state and data kept under work_dir."""

    root: Path
    work_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    module_registries: dict[str, str] = field(default_factory=dict)  # hostname -> modules.v1 URL, see write_cli_config

    def __post_init__(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.state = self.work_dir / "terraform.tfstate"
        self._env = {
            **os.environ,
            **self.env,
            "TF_CLI_CONFIG_FILE": str(write_cli_config(self.work_dir, self.module_registries)),
            "TF_DATA_DIR": str(self.work_dir / "data"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run `terraform -chdir=<root> <args>` and return the finished process."""
        command = [_terraform(), f"-chdir={self.root}", *args]
        result = subprocess.run(command, env=self._env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            summary = " ".join(command[1:])
            raise TerraformError(f"{summary} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color")

    def apply(self, variables: Mapping[str, Any] | None = None) -> None:
        self.run("apply", "-auto-approve", "-input=false", "-no-color", f"-state={self.state}", *_var_args(variables))

    def plan_changes(self, variables: Mapping[str, Any] | None = None) -> str:
        """Return the plan's output if it has changes, or an empty string when the infrastructure matches."""
        result = self.run(
            "plan", "-detailed-exitcode", "-input=false", "-no-color", f"-state={self.state}",
            *_var_args(variables), check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return ""
        if result.returncode == 2:
            return result.stdout
        raise TerraformError(f"terraform plan failed:\n{result.stdout}\n{result.stderr}")

    def destroy(self, variables: Mapping[str, Any] | None = None) -> None:
        self.run("destroy", "-auto-approve", "-input=false", "-no-color", f"-state={self.state}", *_var_args(variables))

    def outputs(self) -> dict[str, object]:
        result = self.run("output", "-json", f"-state={self.state}")
        return {name: value["value"] for name, value in json.loads(result.stdout).items()}

    def resources(self) -> list[str]:
        """Addresses of everything in the state (empty after a clean destroy)."""
        result = self.run("state", "list", f"-state={self.state}", check=False)
        return [line for line in result.stdout.splitlines() if line.strip()]


def _var_args(variables: Mapping[str, Any] | None) -> list[str]:
    """-var arguments: a string as it is, anything else (a list, a number, a bool) as JSON, which HCL reads."""
    return [f"-var={name}={_hcl_value(value)}" for name, value in (variables or {}).items()]


def _hcl_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _terraform() -> str:
    path = shutil.which("terraform")
    if path is None:
        raise TerraformError("terraform is not on the PATH; install Terraform >= 1.5")
    return path
