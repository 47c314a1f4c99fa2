"""reap (schedule): clean up what the build flow left behind (DESIGN.md, "Reaper").

Instances: a builder of this stack that no live job owns (its job's execution is not RUNNING, its job is unknown, or
it is past its deadline plus the grace period) is first marked, and terminated on a later pass if it is still an
orphan then; a mark is removed when the instance turns out to be legitimate. Legitimacy is read from the job-id tag
and the execution's status, never from the jobs-table item's instance_id (written only after RunInstances returns).
Instances tagged ec2-action:keep are logged and counted, never touched.

Jobs: an acknowledged job whose execution never started, or ended without storing a result, is failed with the
cause through the report path (a stored result, answered exactly once); its instances are terminated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, codepipeline, instances, jobs, log, messages, tags
from ..config import Config, load
from ..payloads import Result

# The reaped-instances alarm and the reaper's IAM condition name these too (modules/orchestrator/alarms.tf);
# tests/test_shared_constants.py keeps both sides equal.
METRIC_NAMESPACE = "CodePipelineEc2Action"
METRIC_NAME = "ReapedInstances"
# Instances the reaper judges; shutting-down ones are already going.
JUDGED_STATES = ("pending", "running", "stopping", "stopped")
# A job without an execution is judged only this long after it was created: the sweep has had several passes to start
# it (a poller that died after claiming it), so what is left cannot start. (A job whose execution has ended is judged
# at once: an execution ends only after its ReportResult step, so nothing else will answer it.) Longer than the poll
# function's timeout (modules/orchestrator/main.tf; tests/test_shared_constants.py checks it).
MIN_JOB_AGE_SECONDS = 300

Describe = Callable[[str], dict[str, Any] | None]


def now() -> datetime:
    """The pass's time (one reading per pass: marks, deadlines and ages are compared with it)."""
    return datetime.now(UTC)


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, list[str]]:
    log.reset()
    config = load()
    started = now()
    describe = _execution_reader()
    summary: dict[str, list[str]] = {
        "marked": [],
        "unmarked": [],
        "awaiting": [],
        "terminated": [],
        "kept": [],
        "failed_jobs": [],
    }
    for instance in instances.find(config.stack, JUDGED_STATES):
        log.reset(instance_id=instance["InstanceId"])
        try:
            _judge_instance(config, instance, started, describe, summary)
        except Exception as exc:  # one instance must not stop the others; the next pass tries again
            log.error("cannot judge the instance", error=repr(exc))
    for item in jobs.unanswered():
        log.reset(job_id=item["job_id"], execution_arn=item.get("execution_arn"))
        try:
            _judge_job(config, item, started, describe, summary)
        except Exception as exc:
            log.error("cannot judge the job", error=repr(exc))
    log.reset()
    _count_reaped(config.stack, len(summary["terminated"]))
    log.info("reaper pass finished", **{key: value for key, value in summary.items() if value})
    return summary


def _execution_reader() -> Describe:
    """DescribeExecution, once per execution and pass; None when the execution does not exist."""

    @functools.cache
    def describe(execution_arn: str) -> dict[str, Any] | None:
        try:
            execution: dict[str, Any] = aws.client("stepfunctions").describe_execution(executionArn=execution_arn)
            return execution
        except ClientError as exc:
            if aws.error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise

    return describe


def _parse_time(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- instances ------------------------------------------------------------------------------------------------------


def orphan_reason(config: Config, tag_values: dict[str, str], at: datetime, describe: Describe) -> str | None:
    """Why no live job owns the instance, or None when one does (execution RUNNING, deadline + grace not passed)."""
    job_id = tag_values.get(tags.JOB_ID)
    if not job_id:
        return f"unknown: no {tags.JOB_ID} tag"
    deadline = _parse_time(tag_values.get(tags.DEADLINE))
    if deadline and at > deadline + timedelta(seconds=config.orphan_grace_seconds):
        return f"overdue: deadline {tag_values[tags.DEADLINE]} plus {config.orphan_grace_seconds // 60} minutes passed"
    item = jobs.get(job_id)
    if item is None:
        return f"unknown: no jobs-table item for job {job_id}"
    execution = describe(item["execution_arn"])
    if execution is None:
        return f"unknown: no execution for job {job_id}"
    if execution["status"] != "RUNNING":
        return f"finished: execution {execution['status']}"
    return None


def _judge_instance(
    config: Config, instance: dict[str, Any], at: datetime, describe: Describe, summary: dict[str, list[str]]
) -> None:
    instance_id, tag_values = instance["InstanceId"], instances.tag_values(instance)
    log.bind(job_id=tag_values.get(tags.JOB_ID))
    if tags.KEEP in tag_values:
        log.info("instance kept for debugging (ec2-action:keep); not judged", keep=tag_values[tags.KEEP])
        summary["kept"].append(instance_id)
        return
    reason = orphan_reason(config, tag_values, at, describe)
    marked_at = _parse_time(tag_values.get(tags.ORPHANED_AT)) if tags.ORPHANED_AT in tag_values else None
    stamp = at.isoformat(timespec="milliseconds")  # the pass's time as a mark records it
    ec2 = aws.client("ec2")
    if reason is None:
        if tags.ORPHANED_AT in tag_values or tags.ORPHAN_REASON in tag_values:
            ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": tags.ORPHANED_AT}, {"Key": tags.ORPHAN_REASON}])
            log.info("instance is legitimate again; mark removed", marked_reason=tag_values.get(tags.ORPHAN_REASON))
            summary["unmarked"].append(instance_id)
        return
    if marked_at is None:  # not marked yet (or a mark nobody can read): mark now, terminate on a later pass
        mark = {tags.ORPHANED_AT: stamp, tags.ORPHAN_REASON: reason[:256]}
        ec2.create_tags(Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in mark.items()])
        log.warning("orphaned instance marked", reason=reason)
        summary["marked"].append(instance_id)
        return
    if marked_at >= datetime.fromisoformat(stamp):  # marked by this pass (or a copy of it), not an earlier one
        summary["awaiting"].append(instance_id)
        return
    instances.terminate([instance_id])
    log.warning("orphaned instance terminated", reason=reason, marked_at=tag_values[tags.ORPHANED_AT])
    summary["terminated"].append(instance_id)


# --- jobs -----------------------------------------------------------------------------------------------------------


def _unreported_result(item: dict[str, Any], at: datetime, describe: Describe) -> Result | None:
    """The failure to report for a job whose execution never started or ended unreported; None while it may run."""
    execution = describe(item["execution_arn"])
    if execution is None:
        old_enough = int(at.timestamp()) - int(item.get("created_at", 0)) >= MIN_JOB_AGE_SECONDS
        if not old_enough:
            return None
        return messages.never_started(item["job_id"], item["execution_arn"], item.get("start_error"))
    if execution["status"] == "RUNNING":
        return None
    error = {"Error": execution.get("error", ""), "Cause": execution.get("cause", "")}
    return messages.unreported_execution(item["execution_arn"], execution["status"], error)


def _judge_job(
    config: Config, item: dict[str, Any], at: datetime, describe: Describe, summary: dict[str, list[str]]
) -> None:
    result = _unreported_result(item, at, describe)
    if result is None:
        return
    stored = jobs.store_result_if_absent(item["job_id"], result)
    if stored is None:
        log.info("the build stored its own result meanwhile")
        return
    log.warning("job failed by the reaper", failure=result["message"])
    summary["failed_jobs"].append(item["job_id"])
    # Without an open job (the continuation job has not arrived yet) the poller answers it when it does.
    codepipeline.answer_open_job(stored)
    terminated = instances.terminate_job_instances(config.stack, item["job_id"], spare_kept=True)
    if terminated:
        log.warning("instances of the unreported job terminated", instance_ids=terminated)
        summary["terminated"].extend(terminated)


# --- metric ---------------------------------------------------------------------------------------------------------


def _count_reaped(stack: str, count: int) -> None:
    """One datum per pass (0 too, so the alarm sees data); the alarm fires on a Sum >= 1 over a reaper period."""
    aws.client("cloudwatch").put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[
            {
                "MetricName": METRIC_NAME,
                "Dimensions": [{"Name": "Stack", "Value": stack}],
                "Value": count,
                "Unit": "Count",
            }
        ],
    )
