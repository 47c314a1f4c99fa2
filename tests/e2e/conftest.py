"""Fixtures of the end-to-end suite: one local cloud and one applied example per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# AWS waits (Step Functions Wait/Retry, SSM registration, timeouts) run 20x faster; builds run in real time.
os.environ.setdefault("LOCALCLOUD_TIME_SCALE", "0.05")

from emulator import server
from harness.deployment import Deployment
from harness.matrix import DEPLOYMENT_VARIABLES


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[server.LocalCloud]:
    cloud = server.start()
    yield cloud
    cloud.stop()


@pytest.fixture(scope="session")
def deployment(local_cloud: server.LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    applied = Deployment.apply(local_cloud, tmp_path_factory.mktemp("basic-linux"), variables=DEPLOYMENT_VARIABLES)
    yield applied
    applied.destroy()


@pytest.fixture(autouse=True)
def _no_faults_left_behind() -> Iterator[None]:
    from emulator import faults

    yield
    faults.clear()
