"""The fixtures' view of what Terraform produces is Terraform's, and every copy left outside Terraform is checked.

The handler tests' fixtures (tests/handlers/conftest.py) take EC2_ACTION_CONFIG and the SSM document from
modules/lambda_config and modules/ssm_document_content rendered by Terraform, and the action type's definition from
modules/action_type read with python-hcl2 (harness/rendered.py). Here: that reading equals Terraform's own plan; a
change in the HCL reaches the fixtures (shown on modified copies of the modules); and the copies that remain by
nature (the Lambdas' parser, DESIGN.md's example, the property tables of README.md and DESIGN.md) fail a test when
they drift.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from ec2_action import config
from harness import rendered
from harness.terraform import REPO_ROOT, TerraformRoot

DESIGN_EXAMPLE = re.compile(r"## Lambda configuration\n.*?```json\n(.*?)```", re.S)
PROPERTY_TABLE = re.compile(r"^\| property \| required \| meaning \|\n\| --- .*\n((?:\|.*\n)+)", re.M)
LINUX_DEFAULTS = {"image_id": None, "instance_type": "t3.large"}  # an action with a default instance type only
# The values of DESIGN.md's example ("..." there stands for any text).
DESIGN_VARIABLES: dict[str, Any] = {
    "name_prefix": "ec2-build",
    "actions": {
        "linux": {
            "category": "Build", "provider": "EC2-Linux", "versions": ["2", "1"], "image_id": None,
            "instance_type": "t3.large", "timeout_minutes": 60, "root_volume_size_gib": 30,
        }
    },
    "state_machine_arn": "arn:aws:states:eu-west-1:123456789012:stateMachine:ec2-build-job",
    "jobs_table_name": "ec2-build-jobs",
    "document_name": "ec2-build-run-build",
    "build_log_group_name": "/ec2-build/builds",
    "subnet_ids": ["subnet-0123456789abcdef0"],
    "subnet_zones": {"subnet-0123456789abcdef0": "eu-west-1a"},
    "security_group_ids": ["sg-0123456789abcdef0"],
    "allowed_image_ids": [],
    "allowed_image_owners": ["amazon", "self"],
    "allowed_instance_types": ["t3.*", "m6i.*"],
    "default_build_timeout_minutes": 60,
    "max_build_timeout_minutes": 480,
    "ssm_registration_timeout_minutes": 15,
    "poll_function_name": "ec2-build-poll",
    "orphan_grace_minutes": 30,
    "pool_table_name": "ec2-build-pool",
    "keeper_function_name": "ec2-build-keeper",
    "launch_templates": {
        "Linux": {"id": "lt-0123456789abcdef0", "version": "1"},
        "Windows": {"id": "lt-0123456789abcdef1", "version": "1"},
    },
}  # fmt: skip


def copy_module(name: str, tmp_path: Path) -> Path:
    """A copy of modules/<name> beside a copy of ssm/ (what the modules read), to edit."""
    shutil.copytree(REPO_ROOT / "ssm", tmp_path / "ssm")
    return Path(shutil.copytree(REPO_ROOT / "modules" / name, tmp_path / "modules" / name))


def keys_the_lambdas_do_not_read(settings: dict[str, Any]) -> set[str]:
    """Keys of a rendered EC2_ACTION_CONFIG that ec2_action.config.Config does not hold, and the reverse."""
    fields = {field.name for field in dataclasses.fields(config.Config)}
    return set(settings) ^ fields


# --- EC2_ACTION_CONFIG ---------------------------------------------------------------------------------------------


def test_every_key_terraform_renders_is_one_the_lambdas_read() -> None:
    settings = rendered.lambda_config(DESIGN_VARIABLES)
    assert keys_the_lambdas_do_not_read(settings) == set()
    parsed = config.parse(json.dumps(settings))
    assert [action.version for action in parsed.actions] == ["2", "1"]
    assert parsed.actions[0].defaults == {"InstanceType": "t3.large", "TimeoutMinutes": 60, "RootVolumeGiB": 30}
    assert parsed.ssm_registration_timeout_seconds == 900 and parsed.orphan_grace_seconds == 1800
    assert parsed.tracing is False  # tracing_enabled's default: the functions load no X-Ray SDK


def test_a_key_added_to_the_renderer_only_is_caught(tmp_path: Path) -> None:
    """A new key in modules/lambda_config reaches the rendered configuration (so the fixtures), and the check above
    names it until the Lambdas read it."""
    module = copy_module("lambda_config", tmp_path)
    main = module / "main.tf"
    main.write_text(
        main.read_text().replace("    stack = var.name_prefix\n", "    stack = var.name_prefix\n    spot = true\n")
    )

    settings = rendered.lambda_config(DESIGN_VARIABLES, modules_dir=module.parent)

    assert settings["spot"] is True
    assert keys_the_lambdas_do_not_read(settings) == {"spot"}


def matches(shown: Any, value: Any) -> bool:
    """Whether a documented value equals a rendered one, "..." in a documented string matching any text."""
    if isinstance(shown, str) and "..." in shown and isinstance(value, str):
        return re.fullmatch(".*".join(map(re.escape, shown.split("..."))), value) is not None
    if isinstance(shown, dict) and isinstance(value, dict):
        return shown.keys() == value.keys() and all(matches(shown[key], value[key]) for key in shown)
    if isinstance(shown, list) and isinstance(value, list):
        return len(shown) == len(value) and all(matches(s, v) for s, v in zip(shown, value, strict=True))
    return shown == value


def design_drift(design: str) -> dict[str, tuple[Any, Any]]:
    """{key: (DESIGN.md's value, Terraform's)} for every key of the example that differs from the rendering."""
    example_text = DESIGN_EXAMPLE.search(design)
    assert example_text, "DESIGN.md has no JSON example under ## Lambda configuration"
    example = json.loads(example_text[1])
    settings = rendered.lambda_config(DESIGN_VARIABLES)
    pairs = {key: (example.get(key), settings.get(key)) for key in sorted(example.keys() | settings.keys())}
    return {key: pair for key, pair in pairs.items() if not matches(*pair)}


def test_the_design_example_is_what_terraform_renders() -> None:
    assert design_drift((REPO_ROOT / "DESIGN.md").read_text()) == {}


def test_a_design_example_without_a_rendered_key_is_caught() -> None:
    design = (REPO_ROOT / "DESIGN.md").read_text()
    templates = '{"Linux": {"id": "lt-...", "version": "1"}, "Windows": {"id": "lt-...", "version": "1"}}'
    line = f'  "launch_templates": {templates}\n'
    assert ",\n" + line + "}" in design  # the example's last key
    edited = design.replace(",\n" + line, "\n").replace('"RootVolumeGiB": 30', '"RootVolumeGiB": 50')
    drift = design_drift(edited)
    assert set(drift) == {"launch_templates", "actions"}
    assert drift["launch_templates"][0] is None


# --- The SSM document ----------------------------------------------------------------------------------------------


def test_the_document_holds_each_script_byte_for_byte() -> None:
    """Terraform splits each script on "\\n": joined back, the lines are the file, its final newline included (the
    rule splitlines() broke: it drops the last empty line and splits on CRs)."""
    steps = {step["name"]: step for step in json.loads(rendered.ssm_document())["mainSteps"]}
    for step, script in (("BuildOnLinux", "ssm/linux/run-build.sh"), ("BuildOnWindows", "ssm/windows/run-build.ps1")):
        text = (REPO_ROOT / script).read_text()
        lines = steps[step]["inputs"]["runCommand"]
        assert "\n".join(lines) == text
        assert text.endswith("\n") and lines[-1] == "" and lines != text.splitlines()


def test_a_script_change_reaches_the_rendered_document(tmp_path: Path) -> None:
    module = copy_module("ssm_document_content", tmp_path)
    script = tmp_path / "ssm" / "linux" / "run-build.sh"
    script.write_text(script.read_text() + "echo one more line\r\n")

    steps = {step["name"]: step for step in json.loads(rendered.ssm_document(modules_dir=module.parent))["mainSteps"]}

    assert steps["BuildOnLinux"]["inputs"]["runCommand"][-2:] == ["echo one more line\r", ""]


# --- The action type -----------------------------------------------------------------------------------------------


def planned_action_type(defaults: dict[str, Any], work: Path) -> dict[str, Any]:
    """modules/action_type's action type for one version, as `terraform plan` computes it (AWS provider from the
    local mirror, static fake credentials: planning a new action type calls no AWS API)."""
    root = work / "root"
    root.mkdir(parents=True)
    provider = {
        "region": "eu-west-1", "access_key": "testing", "secret_key": "testing", "skip_credentials_validation": True,
        "skip_requesting_account_id": True, "skip_metadata_api_check": True, "skip_region_validation": True,
    }  # fmt: skip
    action = {"category": "Build", "provider": "EC2-Linux", "version": "1", "previous_versions": [],
              "timeout_minutes": None, **defaults}  # fmt: skip
    call = {
        "source": rendered.module_source(REPO_ROOT / "modules" / "action_type", root), "actions": {"linux": action},
        "max_build_timeout_minutes": 480, "allowed_image_ids": [], "allowed_instance_types": ["t3.*"],
        "document_name": "ci-build-run-build", "tags": {},
    }  # fmt: skip
    (root / "main.tf.json").write_text(json.dumps({"provider": {"aws": provider}, "module": {"action_type": call}}))
    terraform = TerraformRoot(root, work / "terraform")
    terraform.init()
    terraform.run("plan", "-input=false", "-no-color", f"-out={work / 'plan'}")
    plan = json.loads(terraform.run("show", "-json", str(work / "plan")).stdout)
    [module] = plan["planned_values"]["root_module"]["child_modules"]
    [resource] = module["resources"]
    return resource["values"]


@pytest.mark.parametrize(
    "defaults", [LINUX_DEFAULTS, {"image_id": "ami-0123456789abcdef0", "instance_type": None}], ids=["linux", "ami"]
)
def test_the_hcl_reading_is_what_terraform_plans(defaults: dict[str, Any], tmp_path: Path) -> None:
    """Every configuration property with every flag, in order, and the artifact counts: as Terraform plans them."""
    planned = planned_action_type(defaults, tmp_path)
    read = rendered.action_type_definition(defaults)

    api_names = {"minimum_count": "minimumCount", "maximum_count": "maximumCount"}
    assert read["configurationProperties"] == [
        {name: prop[name] for name in read["configurationProperties"][0]} for prop in planned["configuration_property"]
    ]
    assert set(read["configurationProperties"][0]) == set(planned["configuration_property"][0])
    for block, argument in rendered.ARTIFACT_DETAILS.items():
        assert read[argument] == {api_names[k]: v for k, v in planned[block][0].items()}


def add_an_eighth_property(tmp_path: Path) -> Path:
    """A copy of modules/action_type with a property SpotPrice before RootVolumeGiB, in the HCL only."""
    module = copy_module("action_type", tmp_path)
    main = module / "main.tf"
    last = '    { name = "RootVolumeGiB",'
    added = (
        '    { name = "SpotPrice", key = false, required = false, unless_default = null, type = "Number", '
        'description = "Highest spot price." },\n'
    )
    assert last in main.read_text()
    main.write_text(main.read_text().replace(last, added + last))
    return module


def test_an_eighth_property_in_the_hcl_reaches_the_fixture(tmp_path: Path) -> None:
    module = add_an_eighth_property(tmp_path)

    properties = rendered.action_type_definition(LINUX_DEFAULTS, module)["configurationProperties"]

    assert [p["name"] for p in properties][-2:] == ["SpotPrice", "RootVolumeGiB"]
    assert properties[-2] == {"name": "SpotPrice", "key": False, "required": False, "secret": False,
                              "queryable": False, "type": "Number", "description": "Highest spot price."}  # fmt: skip


def test_an_expression_the_reader_cannot_follow_fails_it(tmp_path: Path) -> None:
    module = copy_module("action_type", tmp_path)
    main = module / "main.tf"
    main.write_text(main.read_text().replace("secret      = false", "secret      = configuration_property.value.key"))
    assert rendered.action_type_definition(LINUX_DEFAULTS, module)["configurationProperties"][0]["secret"] is True

    main.write_text(main.read_text().replace("queryable   = false", "queryable   = var.queryable"))
    with pytest.raises(ValueError, match=r"reads \$\{var\.queryable\}"):
        rendered.action_type_definition(LINUX_DEFAULTS, module)


def documented_drift(document: str, module_dir: Path = REPO_ROOT / "modules" / "action_type") -> list[str]:
    """How a document's action property table (name, required column) differs from the module's properties."""
    table = PROPERTY_TABLE.search(document)
    assert table, "no `| property | required | meaning |` table"
    rows = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in table[1].splitlines()]
    documented = {row[0].strip("`"): row[1] for row in rows}
    properties = rendered.hcl_local(module_dir, "properties")
    problems = []
    if list(documented) != [prop["name"] for prop in properties]:
        problems.append(f"the document lists {list(documented)}, the action type {[p['name'] for p in properties]}")
    for prop in properties:
        required = documented.get(prop["name"], "")
        if prop["unless_default"] is not None:
            wanted, ok = f"unless the action sets {prop['unless_default']}", required.startswith("unless the action")
        elif prop["required"]:
            wanted, ok = "yes", required == "yes"
        else:
            wanted, ok = "optional", required not in ("", "yes") and not required.startswith("unless")
        if not ok:
            problems.append(f"{prop['name']}: the document says required {required!r}, the action type {wanted!r}")
    return problems


@pytest.mark.parametrize("document", ["README.md", "DESIGN.md"])
def test_the_docs_list_exactly_the_action_types_properties(document: str) -> None:
    assert documented_drift((REPO_ROOT / document).read_text()) == []


def test_an_eighth_property_in_the_hcl_only_fails_the_docs_check(tmp_path: Path) -> None:
    module = add_an_eighth_property(tmp_path)

    problems = documented_drift((REPO_ROOT / "README.md").read_text(), module)

    assert len(problems) == 2
    assert problems[0].startswith("the document lists ") and "'SpotPrice'" in problems[0].split("the action type")[1]
    assert problems[1] == "SpotPrice: the document says required '', the action type 'optional'"
