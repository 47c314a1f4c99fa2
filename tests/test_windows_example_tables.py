"""The Windows example refuses at plan time a hibernating pool whose instance type has more memory than AWS hibernates
on Windows, computing the memory as the acquire guardrail does (ec2_action.guardrails.memory_gib). Its tables are
HCL locals (examples/windows-container-pipeline/main.tf); these tests fail when they drift from the Lambda's, so the
plan and the launch refuse the same types. tests/windows_container_pipeline.tftest.hcl plans the edges.
"""

from __future__ import annotations

import re
from typing import Any

from ec2_action import guardrails
from test_terraform_static import REPO_ROOT, parsed

EXAMPLE_MAIN = REPO_ROOT / "examples" / "windows-container-pipeline" / "main.tf"


def example_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in parsed(EXAMPLE_MAIN).get("locals", []):
        merged.update(block)
    return merged


def test_the_memory_per_vcpu_table_is_the_guardrails() -> None:
    assert example_locals()["gib_per_vcpu"] == guardrails.GIB_PER_VCPU


def test_the_burstable_sizes_table_is_the_guardrails() -> None:
    table = {key.strip('"'): value for key, value in example_locals()["burstable_gib"].items()}
    assert table == guardrails.BURSTABLE_GIB


def test_the_windows_hibernation_limit_is_the_guardrails() -> None:
    assert example_locals()["windows_hibernation_max_memory_gib"] == guardrails.WINDOWS_HIBERNATION_MAX_MEMORY_GIB


def test_the_burstable_families_are_the_ones_the_guardrail_sizes_by_name() -> None:
    """memory_gib sizes t2, t3 and t3a by name (BURSTABLE_GIB), every other family by vCPUs; so does the example."""
    expression = str(example_locals()["instance_memory_gib"])
    families = re.search(r"contains\(\[([^\]]*)\], local\.instance_family\)", expression)
    assert families, expression
    named = {name.strip(' "') for name in families[1].split(",")}
    assert named == {"t2", "t3", "t3a"}
    for family in named:
        assert guardrails.memory_gib(f"{family}.xlarge") == guardrails.BURSTABLE_GIB["xlarge"]
    assert guardrails.memory_gib("t4g.xlarge") is None  # a "t" family not sized by name is unknown to both


def test_the_refused_and_accepted_edges_the_plan_tests_use_are_the_guardrails() -> None:
    """The instance types tests/windows_container_pipeline.tftest.hcl plans: those it accepts have at most 16 GiB
    for the guardrail too, those it refuses more."""
    accepted = ["m5.xlarge", "c5.2xlarge", "r5.large", "t3.xlarge", "c6i.2xlarge"]
    refused = ["m5.2xlarge", "t3.2xlarge", "r5.xlarge"]
    limit = guardrails.WINDOWS_HIBERNATION_MAX_MEMORY_GIB
    assert all((guardrails.memory_gib(name) or limit + 1) <= limit for name in accepted)
    assert all((guardrails.memory_gib(name) or 0) > limit for name in refused)
    plan_tests = (REPO_ROOT / "tests" / "windows_container_pipeline.tftest.hcl").read_text()
    assert all(f'instance_type     = "{name}"' in plan_tests for name in [*accepted, *refused])
