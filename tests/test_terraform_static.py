"""Static checks of the Terraform code, offline: validate, `terraform test`, conventions, formatting, docs.

Terraform runs in a copy of the module's files in a temporary directory, with its own CLI configuration (providers
from the machine's filesystem mirror only, never the network) and data directories, so nothing is left in the
working tree. Without a mirror or without terraform on the PATH the Terraform runs are skipped, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MIRROR_CANDIDATES = (os.environ.get("TF_PROVIDER_MIRROR", ""), "/opt/tf-plugins", "/usr/share/terraform/plugins")
EXAMPLES = sorted(path.relative_to(REPO_ROOT) for path in (REPO_ROOT / "examples").glob("*/main.tf"))
EXAMPLE_DIRS = [str(path.parent) for path in EXAMPLES]
TEST_FILES = sorted(path.name for path in (REPO_ROOT / "tests").glob("*.tftest.hcl"))
# What the module needs at plan time; the Lambda zips are copied when built, else replaced by placeholders.
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "modules", "examples", "asl", "ssm")
LAMBDA_ZIPS = ("lambda_src/dist/ec2_action.zip", "lambda_src/dist/dependencies_layer.zip")

PARSE_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, preserve_heredocs=False, strip_string_quotes=True
)
# Every resource type used here, by whether it takes a `tags` argument. A new type must be added to one of them.
TAGGABLE = {
    "aws_cloudwatch_event_rule",
    "aws_cloudwatch_log_group",
    "aws_cloudwatch_metric_alarm",
    "aws_codepipeline",
    "aws_codepipeline_custom_action_type",
    "aws_default_security_group",
    "aws_dynamodb_table",
    "aws_ecr_repository",
    "aws_eip",
    "aws_iam_instance_profile",
    "aws_iam_policy",
    "aws_iam_role",
    "aws_imagebuilder_component",
    "aws_imagebuilder_distribution_configuration",
    "aws_imagebuilder_image_pipeline",
    "aws_imagebuilder_image_recipe",
    "aws_imagebuilder_infrastructure_configuration",
    "aws_internet_gateway",
    "aws_kms_key",
    "aws_lambda_function",
    "aws_launch_template",
    "aws_nat_gateway",
    "aws_route_table",
    "aws_s3_bucket",
    "aws_security_group",
    "aws_sfn_state_machine",
    "aws_ssm_document",
    "aws_subnet",
    "aws_vpc",
    "aws_vpc_security_group_egress_rule",
}
NOT_TAGGABLE = {
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_event_target",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_lambda_invocation",
    "aws_lambda_layer_version",
    "aws_lambda_permission",
    "aws_route",
    "aws_route_table_association",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
}


# --- Terraform CLI ---------------------------------------------------------------------------------------------------


def provider_mirror() -> Path | None:
    for candidate in MIRROR_CANDIDATES:
        if candidate and (Path(candidate) / "registry.terraform.io").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def terraform_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the module, its examples and its .tftest.hcl files, where Terraform may write what it likes."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on the PATH")
    mirror = provider_mirror()
    if mirror is None:
        pytest.skip(f"no provider mirror in {[c for c in MIRROR_CANDIDATES if c]}: these checks never use the network")
    work = tmp_path_factory.mktemp("terraform")
    tree = work / "tree"
    tree.mkdir()
    for name in MODULE_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
        else:
            shutil.copy2(source, tree / name)
    (tree / "tests").mkdir()
    for name in TEST_FILES:
        shutil.copy2(REPO_ROOT / "tests" / name, tree / "tests" / name)
    for name in LAMBDA_ZIPS:
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, target)
        else:
            with zipfile.ZipFile(target, "w") as archive:
                archive.writestr("placeholder.txt", "Not built: the static checks only plan.\n")
    (work / "terraform.rc").write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n"
    )
    return tree


def terraform(tree: Path, directory: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run terraform in directory (relative to tree) with the tree's CLI config and a data dir of its own."""
    data_dir = tree.parent / "data" / (directory.replace("/", "_") or "root")
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(tree.parent / "terraform.rc"),
        "TF_DATA_DIR": str(data_dir),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }
    command = ["terraform", f"-chdir={tree / directory}", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args[1:])} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def initialized_root(terraform_tree: Path) -> Path:
    assert_ok(terraform(terraform_tree, ".", "init", "-backend=false", "-input=false", "-no-color"))
    return terraform_tree


def test_root_module_validates(initialized_root: Path) -> None:
    assert_ok(terraform(initialized_root, ".", "validate", "-no-color"))


@pytest.mark.parametrize("example", EXAMPLE_DIRS)
def test_example_validates(terraform_tree: Path, example: str) -> None:
    assert_ok(terraform(terraform_tree, example, "init", "-backend=false", "-input=false", "-no-color"))
    assert_ok(terraform(terraform_tree, example, "validate", "-no-color"))


def test_terraform_test_passes(initialized_root: Path) -> None:
    """Every tests/*.tftest.hcl (mocked provider, plan only), the files run side by side."""
    assert TEST_FILES, "no tests/*.tftest.hcl found"

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return terraform(initialized_root, ".", "test", "-no-color", f"-filter=tests/{name}")

    with ThreadPoolExecutor(max_workers=len(TEST_FILES)) as pool:
        results = dict(zip(TEST_FILES, pool.map(run, TEST_FILES), strict=True))
    failed = {name: result for name, result in results.items() if result.returncode != 0}
    assert not failed, "\n\n".join(f"{name}:\n{r.stdout}\n{r.stderr}" for name, r in failed.items())


def test_terraform_is_formatted(terraform_tree: Path) -> None:
    result = terraform(terraform_tree, ".", "fmt", "-check", "-recursive", "-diff", "-no-color")
    assert result.returncode == 0, f"run `terraform fmt -recursive`:\n{result.stdout}\n{result.stderr}"


# --- Conventions, read with python-hcl2 ----------------------------------------------------------------------------


def tf_files() -> list[Path]:
    roots = [REPO_ROOT, *(REPO_ROOT / "modules").iterdir(), *(REPO_ROOT / "examples").iterdir()]
    return sorted(path for root in roots if root.is_dir() for path in root.glob("*.tf"))


def parsed(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(), serialization_options=PARSE_OPTIONS)


def unquote(label: str) -> str:
    return label.strip('"')


def blocks(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(file, label, body) of every block of a kind; resources labelled "type.name"."""
    found = []
    for path in tf_files():
        where = str(path.relative_to(REPO_ROOT))
        for entry in parsed(path).get(kind, []):
            for first, body in entry.items():
                if kind == "resource":
                    found += [(where, f"{unquote(first)}.{unquote(name)}", b) for name, b in body.items()]
                else:
                    found.append((where, unquote(first), body))
    return found


def test_every_variable_has_a_description_and_a_type() -> None:
    variables = blocks("variable")
    assert variables
    missing = [
        f"{where}: {name}" for where, name, body in variables if not body.get("description") or "type" not in body
    ]
    assert not missing, f"variables without description or type: {missing}"


def test_every_output_has_a_description() -> None:
    outputs = blocks("output")
    assert outputs
    missing = [f"{where}: {name}" for where, name, body in outputs if not body.get("description")]
    assert not missing, f"outputs without description: {missing}"


def test_every_resource_type_is_classified_as_taggable_or_not() -> None:
    unknown = sorted({name.split(".")[0] for _, name, _ in blocks("resource")} - TAGGABLE - NOT_TAGGABLE)
    assert not unknown, f"add these resource types to TAGGABLE or NOT_TAGGABLE in {Path(__file__).name}: {unknown}"


def test_every_taggable_resource_receives_the_tags() -> None:
    """Modules tag with var.tags, examples with local.tags: provider default_tags stay the user's choice."""
    untagged = []
    for where, name, body in blocks("resource"):
        if name.split(".")[0] not in TAGGABLE:
            continue
        expected = "local.tags" if where.startswith("examples/") else "var.tags"
        if expected not in str(body.get("tags", "")):
            untagged.append(f"{where}: {name}")
    assert not untagged, f"taggable resources that do not receive the tags: {untagged}"


def creates_resources(where: str, source: str) -> bool:
    """Whether the module a call in file `where` sources (a local path) declares any resource."""
    directory = (REPO_ROOT / where).parent / source
    return not source.startswith(".") or any("resource" in parsed(path) for path in directory.glob("*.tf"))


def test_every_module_call_passes_the_tags() -> None:
    """Calls of provider-free modules (no resources: they only compute a value) have nothing to tag."""
    calls = blocks("module")
    assert calls
    untagged = [
        f"{where}: {name}"
        for where, name, body in calls
        if "tags" not in body and creates_resources(where, str(body["source"]))
    ]
    assert not untagged, f"module calls without tags: {untagged}"


# data.aws_region's `name` is deprecated in hashicorp/aws 6 (a warning on every plan); `id` is the region in 5 and 6.
DEPRECATED_REGION_NAME = re.compile(r"\bdata\.aws_region\.\w+\.name\b")


def test_no_terraform_code_reads_the_deprecated_region_name() -> None:
    readers = [
        str(path.relative_to(REPO_ROOT)) for path in tf_files() if DEPRECATED_REGION_NAME.search(path.read_text())
    ]
    assert not readers, f"use data.aws_region.<name>.id (works with hashicorp/aws 5 and 6), not .name: {readers}"


# A repository file named in Terraform code: in a comment, a description or a path expression.
CITED_FILE = re.compile(r"\b(?:tests|lambda_src|asl|ssm|scripts)/[\w./-]*\w\.[a-z]+\b")


def test_every_file_the_terraform_code_cites_exists() -> None:
    cited = {
        (str(path.relative_to(REPO_ROOT)), name) for path in tf_files() for name in CITED_FILE.findall(path.read_text())
    }
    assert cited
    missing = sorted(f"{where}: {name}" for where, name in cited if not (REPO_ROOT / name).is_file())
    assert not missing, f"Terraform code cites files that do not exist: {missing}"


# --- Generated docs ------------------------------------------------------------------------------------------------


def test_readme_tables_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "tf_docs.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
