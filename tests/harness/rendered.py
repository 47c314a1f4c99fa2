"""What Terraform renders, for test fixtures: the module's provider-free submodules applied by Terraform itself.

`modules/lambda_config` composes EC2_ACTION_CONFIG and `modules/ssm_document_content` the SSM document; the module
calls them, and so do the fixtures, through a tiny root of their own (a `main.tf.json` calling the submodule with
the test's values) that `terraform init` + `terraform apply` evaluate offline: no provider, no resources, a fraction
of a second. Each distinct (module, values) is rendered once per process.

The action type's definition (configuration properties, artifact counts) is read from modules/action_type with
python-hcl2 instead: that module registers resources, so applying it needs the AWS provider (about 6 s, kept for the
test that compares both: tests/test_fixtures_from_terraform.py). `action_type_definition` evaluates the dynamic
`configuration_property` block over `local.properties` the way Terraform does, and refuses any expression it does not
know, so a change there fails the fixtures rather than drifting from them.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hcl2

from harness.terraform import REPO_ROOT, TerraformRoot

MODULES_DIR = REPO_ROOT / "modules"
PARSE_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, preserve_heredocs=False, strip_string_quotes=True
)


def module_outputs(module: str, variables: Mapping[str, Any] | None = None, modules_dir: Path = MODULES_DIR) -> Any:
    """The outputs of `modules_dir/<module>` applied with `variables` (JSON values), as Terraform computes them.

    A fresh copy on each call: callers may change it.
    """
    text = _apply(str((modules_dir / module).resolve()), json.dumps(dict(variables or {}), sort_keys=True))
    return json.loads(text)


def lambda_config(variables: Mapping[str, Any], modules_dir: Path = MODULES_DIR) -> dict[str, Any]:
    """EC2_ACTION_CONFIG, parsed, as modules/lambda_config renders it for these input variables."""
    return json.loads(module_outputs("lambda_config", variables, modules_dir)["json"])


def ssm_document(modules_dir: Path = MODULES_DIR) -> str:
    """The SSM document's content (JSON text) exactly as modules/ssm_document_content renders it."""
    return str(module_outputs("ssm_document_content", None, modules_dir)["json"])


@functools.cache
def _apply(module_dir: str, variables_json: str) -> str:
    work = Path(tempfile.mkdtemp(prefix=f"{Path(module_dir).name}-", dir=_work_dir()))
    root = work / "root"
    root.mkdir()
    call = {"source": module_source(Path(module_dir), root), **_literal(json.loads(variables_json))}
    document = {"module": {"rendered": call}, "output": {"outputs": {"value": "${module.rendered}"}}}
    (root / "main.tf.json").write_text(json.dumps(document, indent=2))
    terraform = TerraformRoot(root, work / "terraform")
    terraform.init()
    terraform.apply()
    return json.dumps(terraform.outputs()["outputs"])


def module_source(module_dir: Path, root: Path) -> str:
    """module_dir as a local module source of a root module in `root` (Terraform wants ./ or ../ paths)."""
    source = os.path.relpath(module_dir, root)
    return source if source.startswith("..") else f"./{source}"


@functools.cache
def _work_dir() -> str:
    path = tempfile.mkdtemp(prefix="rendered-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _literal(value: Any) -> Any:
    """A JSON value as a literal of Terraform's JSON syntax, where strings are templates: escape ${ and %{."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list):
        return [_literal(item) for item in value]
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    return value


# --- The action type's definition, read from the HCL --------------------------------------------------------------

# How modules/action_type computes `required` for a version: a property named by unless_default is required only when
# the action has no default for it. Checked against the HCL text, so that another rule fails here, loudly.
REQUIRED_RULE = (
    "required = {for property in local.properties : property.name => "
    "property.unless_default == null ? property.required : action[property.unless_default] == null}"
)
PROPERTY_VALUE = re.compile(r"^\$\{configuration_property\.value\.(\w+)\}$")
REQUIRED_VALUE = "${each.value.required[configuration_property.value.name]}"
ARTIFACT_DETAILS = {
    "input_artifact_details": "inputArtifactDetails",
    "output_artifact_details": "outputArtifactDetails",
}


def action_type_definition(
    defaults: Mapping[str, Any], module_dir: Path = MODULES_DIR / "action_type"
) -> dict[str, Any]:
    """What modules/action_type registers for a version of an action with these defaults (`{"image_id": ...,
    "instance_type": ...}`, None: no default), as CreateCustomActionType's arguments: configurationProperties (all,
    in order, with every flag), inputArtifactDetails and outputArtifactDetails."""
    resource = _action_type_resource(module_dir)
    properties = hcl_local(module_dir, "properties")
    if REQUIRED_RULE not in " ".join(str(hcl_local(module_dir, "versions")).split()):
        raise ValueError(f"{module_dir}: local.versions no longer computes `required` as {REQUIRED_RULE!r}")
    dynamic = [d["configuration_property"] for d in resource.get("dynamic", []) if "configuration_property" in d]
    if len(dynamic) != 1 or dynamic[0].get("for_each") != "${local.properties}":
        raise ValueError(f"{module_dir}: expected one dynamic configuration_property block over local.properties")
    [content] = dynamic[0]["content"]

    def evaluate(expression: Any, prop: dict[str, Any]) -> Any:
        if expression == REQUIRED_VALUE:
            rule = prop["unless_default"]
            return prop["required"] if rule is None else defaults[rule] is None
        found = PROPERTY_VALUE.match(expression) if isinstance(expression, str) else None
        if found is not None:
            return prop[found[1]]
        return _literal_value(expression, module_dir)

    definition: dict[str, Any] = {
        "configurationProperties": [
            {name: evaluate(expression, prop) for name, expression in content.items()} for prop in properties
        ]
    }
    for block, argument in ARTIFACT_DETAILS.items():
        [details] = resource[block]
        definition[argument] = {
            "minimumCount": _literal_value(details["minimum_count"], module_dir),
            "maximumCount": _literal_value(details["maximum_count"], module_dir),
        }
    return definition


def _literal_value(expression: Any, module_dir: Path) -> Any:
    if isinstance(expression, str) and "${" in expression:
        raise ValueError(f"{module_dir}: the action type reads {expression}, which this reader cannot follow")
    return expression


def _parsed(module_dir: Path) -> list[dict[str, Any]]:
    return [
        hcl2.loads(path.read_text(), serialization_options=PARSE_OPTIONS) for path in sorted(module_dir.glob("*.tf"))
    ]


def hcl_local(module_dir: Path, name: str) -> Any:
    """A `locals` value of a module as python-hcl2 reads it (an expression stays a "${...}" string)."""
    for parsed in _parsed(module_dir):
        for block in parsed.get("locals", []):
            if name in block:
                return block[name]
    raise KeyError(f"{module_dir} has no local {name}")


def _action_type_resource(module_dir: Path) -> dict[str, Any]:
    found = [
        body
        for parsed in _parsed(module_dir)
        for resource in parsed.get("resource", [])
        for body in resource.get("aws_codepipeline_custom_action_type", {}).values()
    ]
    if len(found) != 1:
        raise ValueError(f"{module_dir}: expected one aws_codepipeline_custom_action_type resource, found {len(found)}")
    return found[0]
