"""The module's lifecycle in the local cloud: a plan after the apply shows no changes. (A second stack applied beside
the first and destroyed without leftovers, its pool's instances included: tests/e2e/test_pool_matrix.py.)"""

from __future__ import annotations

import pytest

from harness.deployment import Deployment

pytestmark = pytest.mark.e2e


def test_plan_after_apply_shows_no_changes(deployment: Deployment) -> None:
    assert deployment.terraform.plan_changes(deployment.variables) == ""
