"""The metrics each emission point prints (CloudWatch Embedded Metric Format, read as CloudWatch reads it), and the
catalogue contract: a name or dimension the catalogue (modules/observability/metrics.json) does not define raises."""

from __future__ import annotations

import json
import time
from typing import Any

import emf
import pytest
from conftest import ACTION_KEY, REGION, STACK, Cloud, Pipeline
from pool_fixtures import acquired as pool_acquired
from pool_fixtures import configure_pool, pool_job
from pool_fixtures import released as pool_released
from test_acquire import acquired, configure_purchase, interrupted, linux_job
from test_report import final, started_build, succeeded_state

from ec2_action import job_metrics, metrics, outcome
from ec2_action.errors import NoCapacity
from ec2_action.handlers import keeper, release, wait_online
from emulator import faults

NAMESPACE = "CodePipelineEc2Action"
CATALOGUE = json.loads((metrics.CATALOGUE_PATHS[1]).read_text())


def only(output: str) -> dict[str, emf.Datum]:
    return emf.by_name(output)


# --- the emitter and the catalogue -----------------------------------------------------------------------------------


def test_an_unknown_name_or_a_wrong_dimension_raises(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(metrics.MetricContractError, match="not in the catalogue"):
        metrics.emit({"JobsFinishd": 1}, Action=ACTION_KEY, Result="Succeeded")
    with pytest.raises(metrics.MetricContractError, match="needs the dimensions"):
        metrics.emit({"JobsFinished": 1}, Action=ACTION_KEY)  # no Result
    with pytest.raises(metrics.MetricContractError, match="belong to none"):
        metrics.emit({"SpotRestarts": 1}, Action=ACTION_KEY, Zone="a")
    assert emf.documents(capsys.readouterr().out) == []  # nothing half written


def test_a_property_rides_along_as_a_property_never_as_a_dimension(cloud: Cloud, capsys: pytest.CaptureFixture[str]):
    """The job id finds a job's line in the logs (Logs Insights) without adding a dimension (cardinality)."""
    metrics.emit({"SpotRestarts": 1}, {"job_id": "job-1"}, Action=ACTION_KEY)

    [document] = emf.documents(capsys.readouterr().out)
    assert document["job_id"] == "job-1"
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["Stack", "Action"]]
    with pytest.raises(metrics.MetricContractError, match="would overwrite"):
        metrics.emit({"SpotRestarts": 1}, {"Action": "other"}, Action=ACTION_KEY)


def test_every_catalogue_metric_has_a_cloudwatch_unit_and_the_common_dimensions_or_its_own() -> None:
    units = {"Count", "Seconds"}
    assert CATALOGUE["dimensions"] == ["Stack", "Action"]
    for name, entry in CATALOGUE["metrics"].items():
        assert entry["unit"] in units, name
        assert metrics.spec(name).dimensions[0] == "Stack", name
        assert entry.get("description"), name


def test_a_line_holds_one_directive_per_dimension_set_and_no_service_dimension(
    cloud: Cloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ec2-build-report")  # the logger's: never a metric dimension
    metrics.emit({"JobsFinished": 1, "BuildSeconds": 12.5}, Action=ACTION_KEY, Result="Succeeded")

    [document] = emf.documents(capsys.readouterr().out)
    directives = document["_aws"]["CloudWatchMetrics"]
    assert [(d["Namespace"], d["Dimensions"], d["Metrics"]) for d in directives] == [
        (NAMESPACE, [["Stack", "Action", "Result"]], [{"Name": "JobsFinished", "Unit": "Count"}]),
        (NAMESPACE, [["Stack", "Action"]], [{"Name": "BuildSeconds", "Unit": "Seconds"}]),
    ]
    assert "service" not in document
    assert abs(document["_aws"]["Timestamp"] / 1000 - time.time()) < 60


def test_the_namespace_is_the_configurations(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    cloud.configure(metrics_namespace="Team/Builds")
    metrics.emit({"SpotRestarts": 1}, Action=ACTION_KEY)
    assert only(capsys.readouterr().out)["SpotRestarts"].namespace == "Team/Builds"


# --- report: JobsFinished and the latency split ----------------------------------------------------------------------


def test_a_successful_job_reports_its_result_and_where_its_time_went(
    cloud: Cloud, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    started = job["started_at"]  # the STARTED event's time, in the execution's input
    assert abs(started - time.time()) < 60
    state = succeeded_state(cloud, job)
    state["grant"] = {"member_id": "m-1", "waited_seconds": 4}
    state["instance"].update(launched_epoch=started + 6.0, acquire_seconds=1.5)
    state["ssm"]["online_at"] = started + 16.0
    state["command"].update(started_at=started + 17.25, ended_at=started + 77.25)
    capsys.readouterr()

    assert final(cloud, state, execution_arn)["succeeded"] is True

    data = only(capsys.readouterr().out)
    assert data["JobsFinished"].dimensions == {"Stack": STACK, "Action": ACTION_KEY, "Result": "Succeeded"}
    assert data["JobsFinished"].value == 1
    seconds = {name: datum.value for name, datum in data.items() if datum.unit == "Seconds"}
    assert seconds == {
        "QueueWaitSeconds": 4.0,
        "AcquireSeconds": 1.5,
        "BootSeconds": 10.0,
        "TimeToCommandSeconds": 17.25,
        "OverheadSeconds": 1.75,  # 17.25 - (4 + 1.5 + 10)
        "BuildSeconds": 60.0,
    }
    assert all(
        datum.dimensions == {"Stack": STACK, "Action": ACTION_KEY} for name, datum in data.items() if name in seconds
    )


def test_a_failed_build_is_command_failed_and_a_job_without_capacity_has_no_phases(
    cloud: Cloud, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    job, execution_arn = started_build(cloud, pipeline)
    failed = succeeded_state(cloud, job)
    failed["command"].update(status="Failed", status_details="Failed", response_code=2)
    capsys.readouterr()
    final(cloud, failed, execution_arn)
    assert only(capsys.readouterr().out)["JobsFinished"].dimensions["Result"] == "CommandFailed"

    job, execution_arn = started_build(cloud, pipeline)
    no_capacity = {
        "job": job,
        "error": {"Error": "NoCapacity", "Cause": json.dumps({"errorMessage": "no capacity for on-demand"})},
        "failed_step": "AcquireInstance",
    }
    capsys.readouterr()
    final(cloud, no_capacity, execution_arn)
    data = only(capsys.readouterr().out)
    assert set(data) == {"JobsFinished"} and data["JobsFinished"].dimensions["Result"] == "NoCapacity"


@pytest.mark.parametrize(
    ("state", "cause"),
    [
        ({"error": {"Error": "InvalidJobConfiguration"}}, "ConfigurationError"),
        ({"error": {"Error": "InstanceNotReady"}}, "InstanceNotReady"),
        ({"error": {"Error": "InstanceLost"}}, "InstanceLost"),
        ({"error": {"Error": "CapacityTimeout"}}, "CapacityTimeout"),
        ({"error": {"Error": "States.Timeout"}, "failed_step": "WaitForCapacity"}, "CapacityTimeout"),
        ({"error": {"Error": "States.Timeout"}, "failed_step": "RunBuildCommand"}, "TimedOut"),
        ({"error": {"Error": "InstanceLaunchFailed"}}, "Other"),
        ({"command": {"status": "TimedOut", "status_details": "ExecutionTimedOut"}}, "TimedOut"),
        ({"command": {"status": "TimedOut", "status_details": "DeliveryTimedOut"}}, "InstanceLost"),
        ({"command": {"status": "Cancelled"}}, "CommandFailed"),
        ({}, "Other"),
    ],
)
def test_the_result_dimension_names_the_cause(state: dict[str, Any], cause: str) -> None:
    failed = {"succeeded": False, "message": "", "failure_type": "JobFailed"}
    assert job_metrics.result_cause(state, failed) == cause  # type: ignore[arg-type]
    assert cause in job_metrics.RESULTS


def test_a_phase_without_its_pieces_is_left_out_and_none_is_negative() -> None:
    state = {
        "job": {"started_at": 100.0},
        "instance": {"instance_id": "i-1", "launched_epoch": 103.0},  # no acquire_seconds: an older acquire
        "ssm": {"online_at": 102.5},  # a clock a little behind
        "command": {"started_at": 110.0},
    }
    assert job_metrics.phases(state) == {"QueueWaitSeconds": 0.0, "BootSeconds": 0.0, "TimeToCommandSeconds": 10.0}


# --- the steps' timings ----------------------------------------------------------------------------------------------


def test_the_command_outcome_carries_when_the_command_ran(cloud: Cloud) -> None:
    invocation = {"ExecutionStartDateTime": "2026-12-03T10:00:00.250Z", "ExecutionEndDateTime": ""}
    assert outcome._run_times(invocation) == {"started_at": 1796292000.25}


def test_wait_online_reports_when_a_member_acquire_found_online_was_online(cloud: Cloud) -> None:
    instance = {"instance_id": "i-1", "launched_epoch": 1234.5, "boot": "ready", "online_checked": True}
    output = wait_online.handler({"job_id": "j", "build": {}, "instance": instance}, cloud.context)
    assert output["online_at"] == 1234.5  # no boot: BootSeconds 0


def test_acquire_times_its_launch(cloud: Cloud) -> None:
    instance = acquired(cloud, linux_job(cloud))["instance"]
    assert 0 <= instance["acquire_seconds"] < 30


# --- acquire: capacity errors and spot restarts -----------------------------------------------------------------------


def test_a_launch_without_capacity_counts_each_pool_by_type_and_zone(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    job = linux_job(cloud, InstanceType="t3.large,m6i.large")
    faults.fleet_capacity(available=0)
    capsys.readouterr()
    with pytest.raises(NoCapacity):
        acquired(cloud, job)

    counted = [d for d in emf.data(capsys.readouterr().out) if d.name == "CapacityErrors"]
    pools = {(d.dimensions["InstanceType"], d.dimensions["AvailabilityZone"]): d.value for d in counted}
    assert pools == {(t, f"{REGION}{z}"): 1 for t in ("t3.large", "m6i.large") for z in "abc"}
    assert all(set(d.dimensions) == {"Stack", "Action", "InstanceType", "AvailabilityZone"} for d in counted)


def test_a_spot_restart_is_counted_once(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    configure_purchase(cloud, "spot")
    job = linux_job(cloud)
    first = acquired(cloud, job)
    capsys.readouterr()

    restarted = pool_acquired(cloud, job, interrupted(cloud, first, ssm={"online": True}))
    data = only(capsys.readouterr().out)
    assert data["SpotRestarts"].value == 1 and data["SpotRestarts"].dimensions == {"Stack": STACK, "Action": ACTION_KEY}
    assert restarted["instance"]["acquire_seconds"] >= 0

    pool_acquired(cloud, job, interrupted(cloud, first, ssm={"online": True}))  # a retried invocation
    assert "SpotRestarts" not in {d.name for d in emf.data(capsys.readouterr().out)}


# --- release, keeper -------------------------------------------------------------------------------------------------


def test_a_release_counts_the_instance_time_the_job_held_by_purchase_option(
    cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    state = acquired(cloud, linux_job(cloud))
    state["instance"]["launched_epoch"] = time.time() - 90
    capsys.readouterr()

    release.handler({"state": state}, cloud.context)

    held = only(capsys.readouterr().out)["InstanceSeconds"]
    assert held.dimensions == {"Stack": STACK, "Action": ACTION_KEY, "PurchaseOption": "on-demand"}
    assert held.unit == "Seconds" and 90 <= held.value < 120


def test_a_warm_member_returned_to_its_pool_counts_its_lease(cloud: Cloud, capsys: pytest.CaptureFixture[str]) -> None:
    configure_pool(cloud, "warm", cap=2)
    state = pool_acquired(cloud, pool_job())
    capsys.readouterr()
    assert "returned" in pool_released(cloud, state)
    assert only(capsys.readouterr().out)["InstanceSeconds"].dimensions["PurchaseOption"] == "on-demand"


def test_a_keeper_pass_reports_the_pool_and_what_it_misses(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_pool(cloud, "warm", cap=3, min_ready=2)
    faults.fleet_capacity(available=0)  # the pool cannot fill
    capsys.readouterr()

    keeper.handler({}, cloud.context)

    data = {d.name: d for d in emf.data(capsys.readouterr().out) if d.name != "CapacityErrors"}
    assert {name: d.value for name, d in data.items()} == {
        "QueueDepth": 0,
        "OldestQueuedSeconds": 0,
        "ReadyInstances": 0,
        "LeasedInstances": 0,
        "MissingReadyInstances": 2,
    }
    assert all(d.dimensions == {"Stack": STACK, "Action": ACTION_KEY} for d in data.values())
