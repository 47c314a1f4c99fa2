"""The module as users consume it from a private module registry, offline.

The release bundle (scripts/release_bundle.py) is served over the module registry protocol by a registry on loopback;
a consumer root with `source = "<host>/<namespace>/<name>/aws"` and a version constraint runs `terraform init` and
`terraform validate`. The CLI configuration (harness.terraform's) points the registry host's modules.v1 service
at the loopback URL (no service discovery, no TLS) and installs providers from the filesystem mirror; any other
request to the network goes to a closed proxy port and fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.terraform import REPO_ROOT, TerraformRoot, provider_mirror

BUILDER = REPO_ROOT / "scripts" / "release_bundle.py"
BUNDLE_NAME = "terraform-aws-codepipeline-ec2-action.tar.gz"
REGISTRY_HOST = "registry.example.test"  # .test never resolves: only the CLI config's host block reaches it
NAMESPACE, NAME, SYSTEM = "acme", "codepipeline-ec2-action", "aws"
SERVED_VERSIONS = ("0.0.9", "0.1.0", "1.0.0")  # "~> 0.1" must pick 0.1.0
# What the module's Terraform reads at plan time: a bundle without one of these is not a release.
READ_BY_TERRAFORM = (
    "asl/build-job.asl.json",
    "lambda_src/dist/ec2_action.zip",
    "lambda_src/dist/dependencies_layer.zip",
    "ssm/linux/run-build.sh",
    "ssm/run-build.json.tftpl",
    "ssm/windows/run-build.ps1",
)
# With a provider mirror nothing may use the network: Go's HTTP client sends every non-loopback request here.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"} if provider_mirror() else {}


def build_bundle(script: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), "--output", str(output)], capture_output=True, text=True, check=False
    )


def bundle_members(bundle: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(bundle) as archive:
        return {member.name: member for member in archive.getmembers()}


# --- The registry -----------------------------------------------------------------------------------------------


class ModuleRegistry(ThreadingHTTPServer):
    """The module registry protocol (modules.v1) on loopback: one module, several versions, all served by one bundle."""

    def __init__(self, bundle: Path, versions: tuple[str, ...]) -> None:
        super().__init__(("127.0.0.1", 0), RegistryHandler)
        self.bundle = bundle
        self.versions = versions
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class RegistryHandler(BaseHTTPRequestHandler):
    server: ModuleRegistry
    MODULE = f"/v1/modules/{NAMESPACE}/{NAME}/{SYSTEM}"

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        download = re.fullmatch(rf"{self.MODULE}/([^/]+)/download", self.path)
        archive = re.fullmatch(rf"/archives/([^/]+)/{re.escape(BUNDLE_NAME)}", self.path)
        if self.path == "/.well-known/terraform.json":
            self._send(200, json.dumps({"modules.v1": "/v1/modules/"}).encode(), "application/json")
        elif self.path == f"{self.MODULE}/versions":
            versions = [{"version": version} for version in self.server.versions]
            self._send(200, json.dumps({"modules": [{"versions": versions}]}).encode(), "application/json")
        elif download and download[1] in self.server.versions:
            location = f"{self.server.url}/archives/{download[1]}/{BUNDLE_NAME}"
            self._send(204, b"", headers={"X-Terraform-Get": location})
        elif archive and archive[1] in self.server.versions:
            self._send(200, self.server.bundle.read_bytes(), "application/gzip")
        else:
            self._send(404, b'{"errors":["Not Found"]}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str = "", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**({"Content-Type": content_type} if content_type else {}), **(headers or {})}.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, message_format: str, *args: object) -> None:
        """Requests are recorded in server.requests, not printed."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("release")
    result = build_bundle(BUILDER, output)
    assert result.returncode == 0, result.stderr
    return output / BUNDLE_NAME


@pytest.fixture(scope="module")
def registry(bundle: Path) -> Iterator[ModuleRegistry]:
    server = ModuleRegistry(bundle, SERVED_VERSIONS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def consumer(registry: ModuleRegistry, directory: Path, version: str) -> TerraformRoot:
    """A root module using the module from the registry, as the README's quick start does."""
    root = directory / "consumer"
    root.mkdir(parents=True)
    (root / "main.tf").write_text(f"""\
terraform {{
  required_version = ">= 1.5"
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }}
  }}
}}

module "ec2_build_action" {{
  source  = "{REGISTRY_HOST}/{NAMESPACE}/{NAME}/{SYSTEM}"
  version = "{version}"

  name_prefix = "ec2-build"
  actions = {{
    linux = {{
      provider      = "EC2-Linux"
      instance_type = "t3.large"
    }}
  }}
  subnet_ids           = ["subnet-0123456789abcdef0"]
  artifact_bucket_arns = ["arn:aws:s3:::artifacts"]
}}

output "action_types" {{
  value = module.ec2_build_action.action_types
}}
""")
    registries = {REGISTRY_HOST: f"{registry.url}/v1/modules/"}
    return TerraformRoot(root, directory / "work", env=OFFLINE, module_registries=registries)


# --- Tests ------------------------------------------------------------------------------------------------------


def test_consumer_installs_the_module_from_the_registry_and_validates(registry: ModuleRegistry, tmp_path: Path) -> None:
    root = consumer(registry, tmp_path, "~> 0.1")
    root.init()
    validated = root.run("validate", "-no-color")
    assert "Success! The configuration is valid." in validated.stdout

    module = f"/v1/modules/{NAMESPACE}/{NAME}/{SYSTEM}"
    assert f"{module}/versions" in registry.requests
    assert f"{module}/0.1.0/download" in registry.requests  # the newest version the constraint allows
    assert f"/archives/0.1.0/{BUNDLE_NAME}" in registry.requests
    manifest = json.loads((root.work_dir / "data" / "modules" / "modules.json").read_text())
    installed = next(entry for entry in manifest["Modules"] if entry["Key"] == "ec2_build_action")
    assert installed["Source"] == f"{REGISTRY_HOST}/{NAMESPACE}/{NAME}/{SYSTEM}"
    assert installed["Version"] == "0.1.0"
    installed_dir = root.root / installed["Dir"]
    assert not (installed_dir / "tests").exists()
    for name in READ_BY_TERRAFORM:
        assert (installed_dir / name).read_bytes() == (REPO_ROOT / name).read_bytes(), name


def test_a_constraint_no_release_matches_fails_init(registry: ModuleRegistry, tmp_path: Path) -> None:
    root = consumer(registry, tmp_path, "~> 2.0")
    already = len(registry.requests)
    result = root.run("init", "-input=false", "-no-color", check=False)
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert "Error: Unresolvable module version constraint" in output, output
    assert (
        f'There is no available version of module "{REGISTRY_HOST}/{NAMESPACE}/{NAME}/{SYSTEM}" (main.tf:11) which'
        " matches the given version constraint. The newest available version is 1.0.0."
    ) in output, output
    assert registry.requests[already:] == [f"/v1/modules/{NAMESPACE}/{NAME}/{SYSTEM}/versions"]  # nothing downloaded


def test_bundle_ships_what_terraform_reads_and_no_tests_venv_or_sources(bundle: Path) -> None:
    members = bundle_members(bundle)
    files = {name for name, member in members.items() if member.isfile()}
    assert set(READ_BY_TERRAFORM) <= files
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md", "CHANGELOG.md", "LICENSE"} <= files
    assert "examples/basic-linux/main.tf" in files
    assert "modules/orchestrator/main.tf" in files
    top_level = {name.split("/", 1)[0] for name in members}
    assert not top_level & {"tests", ".venv", ".venv-checkov", "scripts", ".ci", "pyproject.toml"}
    assert not [name for name in members if name.startswith("lambda_src/") and not name.startswith("lambda_src/dist")]
    assert not [name for name in files if name.endswith((".py", ".pyc", ".tfstate", ".lock.hcl"))]
    assert not [name for name in members if {"__pycache__", ".terraform"} & set(name.split("/"))]
    assert {(member.uid, member.gid, member.uname, member.gname, member.mtime) for member in members.values()} == {
        (0, 0, "", "", 315532800)
    }


def test_bundle_is_reproducible(bundle: Path, tmp_path: Path) -> None:
    again = build_bundle(BUILDER, tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / BUNDLE_NAME).read_bytes() == bundle.read_bytes()
    assert f"{len([m for m in bundle_members(bundle).values() if m.isfile()])} files" in again.stdout


def copy_of_release_tree(bundle: Path, target: Path) -> Path:
    """What the builder reads (the bundle's own content) plus the builder itself, in a scratch tree."""
    with tarfile.open(bundle) as archive:
        archive.extractall(target, filter="data")
    (target / "scripts").mkdir()
    shutil.copy2(BUILDER, target / "scripts" / BUILDER.name)
    return target


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        *[(name, f"{name} is missing (read by ") for name in READ_BY_TERRAFORM if not name.startswith("lambda_src")],
        *[
            (name, f"{name} is missing (read by main.tf; run `make build`)")
            for name in READ_BY_TERRAFORM
            if name.startswith("lambda_src/dist/")
        ],
        ("modules/builder/README.md", "modules/builder/README.md is missing (the submodule's document)"),
        ("CHANGELOG.md", "CHANGELOG.md is missing (a document of the root module)"),
        ("LICENSE", "LICENSE is missing (a document of the root module)"),
        ("examples/basic-linux", "README.md links to examples/basic-linux, which the bundle does not ship"),
    ],
)
def test_builder_fails_naming_a_missing_required_file(bundle: Path, tmp_path: Path, remove: str, message: str) -> None:
    tree = copy_of_release_tree(bundle, tmp_path / "tree")
    target = tree / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    result = build_bundle(tree / "scripts" / BUILDER.name, tmp_path / "out")
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "out" / BUNDLE_NAME).exists()


def test_builder_follows_a_new_reference_in_the_modules(bundle: Path, tmp_path: Path) -> None:
    """A file a .tf starts reading (via a path local here) becomes required, without listing it anywhere."""
    tree = copy_of_release_tree(bundle, tmp_path / "tree")
    (tree / "modules" / "ssm_document_content" / "extra.tf").write_text(
        'locals {\n  extra_policy = file("${local.scripts_dir}/linux/extra-policy.json")\n}\n'
    )
    result = build_bundle(tree / "scripts" / BUILDER.name, tmp_path / "out")
    assert result.returncode == 1
    assert "ssm/linux/extra-policy.json is missing (read by modules/ssm_document_content/extra.tf)" in result.stderr

    (tree / "ssm" / "linux" / "extra-policy.json").write_text("{}\n")
    result = build_bundle(tree / "scripts" / BUILDER.name, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "ssm/linux/extra-policy.json" in bundle_members(tmp_path / "out" / BUNDLE_NAME)
