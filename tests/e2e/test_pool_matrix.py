"""The pool matrix (pool_rows, run by harness.pool_matrix): faults around a warm and a stopped instance pool, and
impossible pools refused at plan time.

Each pool is a deployment of examples/basic-linux of its own (harness.pool_matrix.POOL_STACKS), applied once for all
of its rows: one test per deployment runs them one after another and asserts that every row holds (its own checks,
and the invariants: a terminal job state naming the cause, one execution per job, nothing left beyond the pool's
minimum after the keeper's and the reaper's passes, the registry's counter equal to its records). A failure prints
every failed row's problems and the whole table. The warm pool also proves that a second stack applies beside the
first and that its destroy leaves nothing behind, its pool's instances included.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from e2e.pool_rows import PLAN_ROWS, STOPPED_ROWS, WARM_ROWS
from emulator.server import LocalCloud
from harness import pool_matrix
from harness.deployment import Deployment, leftovers

pytestmark = pytest.mark.e2e


def _applied(local_cloud: LocalCloud, work_dir: Path, stack: str) -> Iterator[Deployment]:
    deployment = Deployment.apply(local_cloud, work_dir, variables=pool_matrix.POOL_STACKS[stack])
    yield deployment
    deployment.destroy()


@pytest.fixture(scope="module")
def stopped_pool(local_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from _applied(local_cloud, tmp_path_factory.mktemp("pool-stopped"), "stopped")


def _assert_all_hold(results: Sequence[pool_matrix.PoolResult]) -> None:
    assert all(result.passed for result in results), pool_matrix.explain(results)


# Instances that run, or could run again.
NOT_ENDED = ("pending", "running", "stopping", "stopped")


def test_warm_pool_rows_then_destroy_leaves_nothing_beside_the_first_stack(
    local_cloud: LocalCloud, deployment: Deployment, tmp_path: Path
) -> None:
    """The warm pool is a second stack beside the session's: its rows hold; then `terraform destroy` ends its
    pool's ready instance (launched by the keeper, not by Terraform: the keeper's invocation drains the stack before
    the functions go), leaves nothing named by its prefix, and leaves the first stack as it was."""
    warm = Deployment.apply(local_cloud, tmp_path, variables=pool_matrix.POOL_STACKS["warm"])
    try:
        results = [pool_matrix.run_pool_row(warm, row) for row in WARM_ROWS]
        # At rest (the keeper's passes restored the minimum): the destroy has a ready instance to end.
        rest = pool_matrix.PoolRun(warm, pool_matrix.POOL_STACKS["warm"]["pool_min_ready"], tmp_path).settle()
        ready = {i["InstanceId"] for i in warm.instances() if i["State"]["Name"] in NOT_ENDED}
    finally:
        warm.destroy()
    assert not rest, f"the pool never came to rest before the destroy: {rest}"
    _assert_all_hold(results)
    assert ready, "the pool had no instance at rest to drain"
    prefix = warm.outputs["name_prefix"]
    assert [i["InstanceId"] for i in warm.instances() if i["State"]["Name"] in NOT_ENDED] == []
    assert warm.terraform.resources() == []
    assert leftovers(warm, prefix) == {}
    assert deployment.terraform.plan_changes(deployment.variables) == "", "the first stack was touched"


def test_stopped_pool_rows(stopped_pool: Deployment) -> None:
    _assert_all_hold([pool_matrix.run_pool_row(stopped_pool, row) for row in STOPPED_ROWS])


def test_impossible_pools_are_refused_at_plan_time(local_cloud: LocalCloud, tmp_path: Path) -> None:
    env, region = local_cloud.env(), local_cloud.region
    _assert_all_hold([pool_matrix.run_plan_row(env, region, tmp_path / row.id, row) for row in PLAN_ROWS])
