"""`make faults`: apply examples/basic-linux into the local cloud (its action on spot, then on-demand), run every row
of the fault matrix, the spot matrix and the bad-input matrix (tests/e2e/fault_rows.py, spot_rows.py,
bad_input_rows.py), then the pool matrix against a warm and a stopped pool (tests/e2e/pool_rows.py: each its own
deployment of the example, and plans refused at plan time), and print every table.

Exits 0 only when every row holds. Everything it creates lives in a temporary directory and in the local cloud's
memory, and is destroyed before it exits.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("LOCALCLOUD_TIME_SCALE", "0.05")

from e2e import bad_input_rows, fault_rows, pool_rows, spot_rows
from emulator import server
from harness import matrix, pool_matrix
from harness.deployment import Deployment

MESSAGE_WIDTH = 110


def shorten(message: str, width: int = MESSAGE_WIDTH) -> str:
    """The message on one line, cut to width (the cause comes first in every message)."""
    return textwrap.shorten(message, width, placeholder="…") if message.strip() else "-"


def outcome_cell(result: matrix.Result) -> str:
    kind = f"{result.outcome} ({result.failure_type})" if result.failure_type else result.outcome
    return f"{kind}: {shorten(result.message)}"


def verdict(result: matrix.Result) -> str:
    return "pass" if result.passed else "FAIL: " + "; ".join(result.problems)


def table(results: Sequence[matrix.Result], with_handling: bool) -> str:
    """A Markdown table: one line per row of a matrix."""
    header = ["fault" if not with_handling else "input", "outcome and message", "instances left", "executions"]
    header = [*header[:1], *(["handling"] if with_handling else []), *header[1:], "verdict", "s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        cells = [f"{result.row.id}: {result.row.description}"]
        cells += [result.row.handling or ""] if with_handling else []
        cells += [outcome_cell(result), str(result.instances_left), str(result.executions), verdict(result)]
        cells.append(f"{result.seconds:.0f}")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def run_matrix(deployment: Deployment, title: str, rows: Sequence[matrix.Row]) -> list[matrix.Result]:
    results = []
    for row in rows:
        result = matrix.run_row(deployment, row)
        print(f"  {row.id}: {verdict(result)} ({result.seconds:.0f} s)", flush=True)
        results.append(result)
    print(f"\n{title}\n\n{table(results, with_handling=rows is bad_input_rows.BAD_INPUT_ROWS)}\n", flush=True)
    return results


def run_pool_matrix(cloud: server.LocalCloud, work: Path) -> list[pool_matrix.PoolResult]:
    """Each pool's rows against its own deployment (applied, run, destroyed in turn), then the plan-time rows."""
    results: list[pool_matrix.PoolResult] = []
    for stack, rows in (("warm", pool_rows.WARM_ROWS), ("stopped", pool_rows.STOPPED_ROWS)):
        deployment = Deployment.apply(cloud, work / f"pool-{stack}", variables=pool_matrix.POOL_STACKS[stack])
        for row in rows:
            result = pool_matrix.run_pool_row(deployment, row)
            print(f"  {stack}: {row.id}: {pool_matrix.verdict(result)} ({result.seconds:.0f} s)", flush=True)
            results.append(result)
        deployment.destroy()
    for plan_row in pool_rows.PLAN_ROWS:
        result = pool_matrix.run_plan_row(cloud.env(), cloud.region, work / f"plan-{plan_row.id}", plan_row)
        print(f"  plan: {plan_row.id}: {pool_matrix.verdict(result)} ({result.seconds:.0f} s)", flush=True)
        results.append(result)
    print(f"\nPool matrix\n\n{pool_matrix.table(results)}\n", flush=True)
    return results


def main() -> int:
    # moto's state machine interpreter logs every Fail state as an exception; failing builds are the point here.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    cloud = server.start()
    print(
        f"local cloud at {cloud.endpoint}; AWS-side waits scaled by {os.environ['LOCALCLOUD_TIME_SCALE']}", flush=True
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ec2-action-faults-") as work:
            deployment = Deployment.apply(cloud, Path(work), variables=matrix.DEPLOYMENT_VARIABLES)
            results = run_matrix(deployment, "Fault matrix", fault_rows.FAULT_ROWS)
            results += run_matrix(deployment, "Spot matrix", spot_rows.SPOT_ROWS)
            results += run_matrix(deployment, "Bad-input matrix", bad_input_rows.BAD_INPUT_ROWS)
            deployment.destroy()
            pool_results = run_pool_matrix(cloud, Path(work))
    finally:
        cloud.stop()
    failed = [result.row.id for result in results if not result.passed]
    failed += [result.id for result in pool_results if not result.passed]
    total = len(results) + len(pool_results)
    print(f"{total - len(failed)} of {total} rows hold" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
