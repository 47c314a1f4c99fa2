"""The spot rows of the fault matrix (issue 11): the session's deployment buys spot first, then on-demand
(harness.matrix.DEPLOYMENT_VARIABLES), and each row interrupts its build or takes capacity away (run by
test_fault_matrix.py and `make faults`, through harness.matrix; hooks and proofs in harness.spot_matrix).

Every row also holds the matrix's invariants (a terminal answer naming the cause, one execution per job, no instance
left after the reaper window) and gives the job exactly one final answer.
"""

from __future__ import annotations

from harness import spot_matrix as spot
from harness.matrix import BUILD_SUCCEEDED, FAILED, SUCCEEDED, Row, crash, job_metrics_say, ran_at_least

SPOT_ROWS: list[Row] = [
    Row(
        "spot-interrupted-building",
        "the spot instance is interrupted (warning, then termination) while the build runs: restarted on another "
        "spot instance, Succeeded, the summary says so",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        instance_type=None,
        configure=spot.counted_build(finishes_at=2),
        during=spot.interrupt_builds(1),
        proof=spot.every_spot_row(spot.restarted(1, spot.SPOT), spot.build_ran(2), ran_at_least("interruption", 1)),
    ),
    Row(
        "spot-interrupted-twice",
        "interrupted while building on two spot instances one after another: the interruption budget (2) spent, the "
        "build finishes on on-demand",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        instance_type=None,
        configure=spot.counted_build(finishes_at=3),
        during=spot.interrupt_builds(2),
        proof=spot.every_spot_row(spot.restarted(2, spot.ON_DEMAND), spot.build_ran(3)),
    ),
    Row(
        "spot-warning-lost",
        "the interruption warning is lost: the instance just terminates while the build runs, and the build is "
        "restarted all the same (the state change)",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        instance_type=None,
        configure=spot.counted_build(finishes_at=2),
        during=spot.interrupt_builds(1, warning=False),
        proof=spot.every_spot_row(spot.restarted(1, spot.SPOT), spot.build_ran(2)),
    ),
    Row(
        "spot-interrupted-registering",
        "the spot instance is interrupted while WaitForSsmOnline waits for it (it never registers): restarted, the "
        "build runs once, on the next instance",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        instance_type=None,
        configure=spot.counted_build(finishes_at=1),
        inject=spot.never_registers_once,
        during=spot.interrupt_while_registering,
        proof=spot.every_spot_row(spot.restarted(1, spot.SPOT), spot.build_ran(1)),
    ),
    Row(
        "spot-exhausted",
        'no spot capacity in any pool (InstanceType "t4g.micro, t4g.small"): on-demand at once, in the same acquire',
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        instance_type="t4g.micro, t4g.small",
        inject=spot.no_capacity("spot"),
        proof=spot.every_spot_row(spot.on_demand_at_once),
    ),
    Row(
        "no-capacity-anywhere",
        "no capacity in any pool, spot or on-demand, at any of its attempts: Failed, naming every pool tried and why",
        FAILED,
        "JobFailed",
        "No EC2 capacity for the build",
        may_launch=False,
        instance_type=None,
        inject=spot.no_capacity(),
        # The first attempt and the three capacity retries, then the failure.
        proof=spot.every_spot_row(
            spot.every_pool_named(spot.action_instance_types),
            ran_at_least("acquire", 4),
            job_metrics_say("NoCapacity"),
        ),
    ),
    Row(
        "spot-interrupted-after-success",
        "the build's command succeeded and its event was sent but not yet read (command_event crashes, the sweep "
        "held) when the instance is interrupted: the result stands, the build does not run twice",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        instance_type=None,
        configure=spot.counted_build(finishes_at=2),
        inject=crash("command_event", None),
        during=spot.interrupt_after_success,
        proof=spot.every_spot_row(spot.not_restarted, spot.build_ran(1), spot.result_delivered_by_interruption),
    ),
]
