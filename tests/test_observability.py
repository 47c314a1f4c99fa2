"""The dashboard and the alarms against the metrics the Lambdas emit: a metric renamed on one side only fails here.

modules/observability is planned offline (a filesystem provider mirror, placeholder credentials, no API call: its
data sources are computed by the provider) and its rendered dashboard JSON and alarm definitions are read from the
plan. Every metric they name must be one `ec2_action.metrics` knows, drawn or watched with exactly the dimension set
the emitter writes (CloudWatch matches a metric by name and its full set of dimensions); every catalogue metric must
be on the dashboard. A catalogue without a metric a widget names must fail the plan.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ec2_action import metrics
from test_terraform_static import REPO_ROOT, provider_mirror

MODULE = REPO_ROOT / "modules" / "observability"
NAMESPACE = "Team/CI-Builds"
STACK = "ci-build"
SEARCH = re.compile(
    r"^SEARCH\('\{\"(?P<namespace>[^\"]+)\",(?P<dimensions>[\w,]+)\}"
    r" Stack=\"(?P<stack>[^\"]+)\" MetricName=\"(?P<name>\w+)\"'"
)
SCHEMA = re.compile(
    r"FROM SCHEMA\(\"(?P<namespace>[^\"]+)\", (?P<dimensions>[\w, ]+)\) WHERE Stack = '(?P<stack>[^']+)'"
)

CALLER = f"""
provider "aws" {{
  region                      = "eu-west-1"
  access_key                  = "offline"
  secret_key                  = "offline"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}}

module "observability" {{
  source                     = "./observability"
  name_prefix                = "{STACK}"
  metrics_namespace          = "{NAMESPACE}"
  actions = {{
    linux   = {{ keeps_ready_instances = false }}
    windows = {{ keeps_ready_instances = true }}
  }}
  function_names             = {{ poll = "{STACK}-poll", acquire = "{STACK}-acquire", keeper = "{STACK}-keeper" }}
  state_machine_arn          = "arn:aws:states:eu-west-1:123456789012:stateMachine:{STACK}-job"
  build_log_group_name       = "/{STACK}/builds"
  reaper_schedule_expression = "rate(5 minutes)"
  alarm_actions              = []
  tags                       = {{}}
}}

output "dashboard_body" {{
  value = module.observability.dashboard_body
}}

output "alarms" {{
  value = module.observability.alarms
}}
"""


def plan(directory: Path) -> subprocess.CompletedProcess[str]:
    """init + plan of the caller in `directory` (the module copied beside it), the plan saved as plan.bin."""
    mirror = provider_mirror()
    if shutil.which("terraform") is None or mirror is None:
        pytest.skip("needs terraform on the PATH and a provider mirror (these checks never use the network)")
    (directory / "terraform.rc").write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path    = "{mirror}"\n  }}\n}}\n'
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(directory),
        "TF_CLI_CONFIG_FILE": str(directory / "terraform.rc"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    for args in (("init", "-backend=false"), ("plan", "-refresh=false", "-out=plan.bin")):
        result = subprocess.run(
            ["terraform", *args, "-input=false", "-no-color"],
            cwd=directory, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            return result
    return subprocess.run(
        ["terraform", "show", "-json", "plan.bin"],
        cwd=directory, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def caller_of(module: Path, directory: Path) -> Path:
    shutil.copytree(module, directory / "observability", ignore=shutil.ignore_patterns(".terraform*", "*.md"))
    (directory / "main.tf").write_text(CALLER)
    return directory


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = plan(caller_of(MODULE, tmp_path_factory.mktemp("observability")))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    outputs = json.loads(result.stdout)["planned_values"]["outputs"]
    return {name: output["value"] for name, output in outputs.items()}


def drawn(body: dict[str, Any]) -> list[tuple[str, frozenset[str]]]:
    """(metric name, dimension names) of every line of our namespace on the dashboard."""
    found = []
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], dict):
                search = SEARCH.match(line[0]["expression"])
                assert search, f"unexpected expression {line[0]['expression']!r}"
                assert (search["namespace"], search["stack"]) == (NAMESPACE, STACK)
                found.append((search["name"], frozenset(search["dimensions"].split(","))))
            elif line[0] == NAMESPACE:
                pairs = line[2:-1] if isinstance(line[-1], dict) else line[2:]
                dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
                assert dimensions["Stack"] == STACK
                found.append((line[1], frozenset(dimensions)))
    return found


def dashboard_metric_names() -> set[str]:
    raw = json.loads((MODULE / "metrics.json").read_text())
    return {name for name, entry in raw["metrics"].items() if entry.get("dashboard", True)}


def test_the_dashboard_draws_every_metric_as_the_emitter_writes_it(planned: dict[str, Any]) -> None:
    body = json.loads(planned["dashboard_body"])
    lines = drawn(body)
    assert lines
    for name, dimensions in lines:
        assert name in metrics.catalogue(), f"the dashboard draws {name}, which the functions never emit"
        assert dimensions == frozenset(metrics.spec(name).dimensions), (
            f"{name} is drawn with dimensions {sorted(dimensions)}, emitted with {metrics.spec(name).dimensions}"
        )
    assert {name for name, _ in lines} == dashboard_metric_names()
    # CloudWatch's limit on a dashboard body.
    assert len(planned["dashboard_body"].encode()) < 1024 * 1024


def test_the_alarms_watch_metrics_as_the_emitter_writes_them(planned: dict[str, Any]) -> None:
    ours = {key: alarm for key, alarm in planned["alarms"].items() if alarm["namespace"] == NAMESPACE or alarm["query"]}
    assert {"reaped_instances", "linux_queue_wait", "windows_pool_shortfall", "linux_capacity_errors"} <= set(ours)
    for key, alarm in ours.items():
        spec = metrics.spec(alarm["metric"])
        if alarm["query"]:
            schema = SCHEMA.search(alarm["query"])
            assert schema and (schema["namespace"], schema["stack"]) == (NAMESPACE, STACK), alarm["query"]
            assert f"SUM({spec.name})" in alarm["query"]
            dimensions = {name.strip() for name in schema["dimensions"].split(",")}
        else:
            dimensions = set(alarm["dimensions"])
        assert dimensions == set(spec.dimensions), f"{key} watches {spec.name} with {sorted(dimensions)}"


def test_a_metric_missing_from_the_catalogue_fails_the_plan(tmp_path: Path) -> None:
    """As if the catalogue (and so the emitter) renamed OldestQueuedSeconds: the widgets and the alarm still name it."""
    module = tmp_path / "renamed"
    shutil.copytree(MODULE, module)
    catalogue = json.loads((module / "metrics.json").read_text())
    catalogue["metrics"]["OldestQueueSeconds"] = catalogue["metrics"].pop("OldestQueuedSeconds")
    (module / "metrics.json").write_text(json.dumps(catalogue))
    (tmp_path / "caller").mkdir()
    result = plan(caller_of(module, tmp_path / "caller"))
    assert result.returncode != 0
    assert (
        "Dashboard widgets name metrics that modules/observability/metrics.json does not list: OldestQueuedSeconds"
        in (" ".join(result.stderr.split()))
    )
    assert "Alarms watch metrics that modules/observability/metrics.json does not list: OldestQueuedSeconds" in (
        " ".join(result.stderr.split())
    )
