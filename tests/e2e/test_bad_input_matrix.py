"""The bad-input matrix (localcloud.matrix.BAD_INPUT_ROWS): one test per action configuration.

Each input is either rejected before any instance launches (a ConfigurationError naming the property and why, and
no instance for the job) or runs literally (shell metacharacters reach the build as text: the test's marker file is
never created and the build output shows the literal value).
"""

from __future__ import annotations

import pytest
from localcloud import matrix
from localcloud.deployment import Deployment

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("row", matrix.BAD_INPUT_ROWS, ids=lambda row: row.id)
def test_bad_input(deployment: Deployment, row: matrix.Row) -> None:
    matrix.check_row(deployment, row)
