"""The bad-input matrix (bad_input_rows.BAD_INPUT_ROWS, run by harness.matrix): one test per action configuration.

Each input is either rejected before any instance launches (a ConfigurationError naming the property and why, and
no instance for the job) or runs literally (shell metacharacters reach the build as text: the test's marker file is
never created and the build output shows the literal value).
"""

from __future__ import annotations

import pytest

from e2e.bad_input_rows import BAD_INPUT_ROWS
from harness import matrix
from harness.deployment import Deployment

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("row", BAD_INPUT_ROWS, ids=lambda row: row.id)
def test_bad_input(deployment: Deployment, row: matrix.Row) -> None:
    matrix.check_row(deployment, row)
