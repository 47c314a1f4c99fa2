"""The fault matrix (fault_rows.FAULT_ROWS and spot_rows.SPOT_ROWS, run by harness.matrix): one test per injected
fault, each in its own pipeline, against the session's deployment (its action buys spot first, then on-demand).

Each test asserts the row's expected outcome, failure type and message, and the invariants: the job ends in a
terminal CodePipeline state with a message naming the cause, one execution per job, no instance left running after
the reaper window. A spot row also asserts one final answer, how often its build ran and what its summary says.
"""

from __future__ import annotations

import pytest

from e2e.fault_rows import FAULT_ROWS
from e2e.spot_rows import SPOT_ROWS
from harness import matrix
from harness.deployment import Deployment

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("row", FAULT_ROWS, ids=lambda row: row.id)
def test_fault(deployment: Deployment, row: matrix.Row) -> None:
    matrix.check_row(deployment, row)


@pytest.mark.parametrize("row", SPOT_ROWS, ids=lambda row: row.id)
def test_spot(deployment: Deployment, row: matrix.Row) -> None:
    matrix.check_row(deployment, row)
