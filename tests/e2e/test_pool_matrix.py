"""The pool matrix (pool_rows, run by harness.pool_matrix): faults around a warm and a stopped instance pool, and
impossible pools refused at plan time.

Each pool is a deployment of examples/basic-linux of its own (harness.pool_matrix.POOL_STACKS), applied once for all
of its rows: one test per deployment runs them one after another and asserts that every row holds (its own checks,
and the invariants: a terminal job state naming the cause, one execution per job, nothing left beyond the pool's
minimum after the keeper's and the reaper's passes, the registry's counter equal to its records). A failure prints
every failed row's problems and the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from e2e.pool_rows import PLAN_ROWS, STOPPED_ROWS, WARM_ROWS
from emulator.server import LocalCloud
from harness import pool_matrix
from harness.deployment import Deployment

pytestmark = pytest.mark.e2e


def _applied(local_cloud: LocalCloud, work_dir: Path, stack: str) -> Iterator[Deployment]:
    deployment = Deployment.apply(local_cloud, work_dir, variables=pool_matrix.POOL_STACKS[stack])
    yield deployment
    deployment.destroy()


@pytest.fixture(scope="module")
def warm_pool(local_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from _applied(local_cloud, tmp_path_factory.mktemp("pool-warm"), "warm")


@pytest.fixture(scope="module")
def stopped_pool(local_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from _applied(local_cloud, tmp_path_factory.mktemp("pool-stopped"), "stopped")


def _assert_all_hold(results: Sequence[pool_matrix.PoolResult]) -> None:
    assert all(result.passed for result in results), pool_matrix.explain(results)


def test_warm_pool_rows(warm_pool: Deployment) -> None:
    _assert_all_hold([pool_matrix.run_pool_row(warm_pool, row) for row in WARM_ROWS])


def test_stopped_pool_rows(stopped_pool: Deployment) -> None:
    _assert_all_hold([pool_matrix.run_pool_row(stopped_pool, row) for row in STOPPED_ROWS])


def test_impossible_pools_are_refused_at_plan_time(local_cloud: LocalCloud, tmp_path: Path) -> None:
    env, region = local_cloud.env(), local_cloud.region
    _assert_all_hold([pool_matrix.run_plan_row(env, region, tmp_path / row.id, row) for row in PLAN_ROWS])
