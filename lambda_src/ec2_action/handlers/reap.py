"""reap (schedule): clean up what the build flow left behind (DESIGN.md, "Reaper").

Instances: a builder of this stack that no live job owns (its job's execution is not RUNNING, its job is unknown, or
it is past its deadline plus the grace period) is first marked, and terminated on a later pass if it is still an
orphan then; a mark is removed when the instance turns out to be legitimate. Legitimacy is read from the job-id tag
and the execution's status, never from the jobs-table item's instance_id (written only after RunInstances returns).
Instances tagged ec2-action:keep are logged and counted, never touched.

Pools (the registry, DESIGN.md "Instance pools"): an instance tagged with a member (ec2-action:member) is legitimate
iff its member record exists and is not leased to a job whose execution has ended; without a record it is judged as
an orphan (marked, then terminated). A lease whose job's execution ended (its release never ran or failed) is
recovered at once: the member is retired (instance terminated, record and slot removed), or, when its job never
picked up a granted ready member, the member goes back to the pool. A record with neither a live instance nor a live
lease is removed, and a queue entry whose execution ended is dropped (the counter follows both).

Jobs: an acknowledged job whose execution never started, or ended without storing a result, is failed with the
cause through the report path (a stored result, answered exactly once); its instances are terminated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from .. import aws, codepipeline, instances, jobs, log, messages, metrics, queue, registry, tags
from ..config import Config, load
from ..payloads import Result
from ..registry import Member

# Instances the reaper judges; shutting-down ones are already going.
JUDGED_STATES = ("pending", "running", "stopping", "stopped")
# A job without an execution is judged only this long after it was created: the sweep has had several passes to start
# it (a poller that died after claiming it), so what is left cannot start. (A job whose execution has ended is judged
# at once: an execution ends only after its ReportResult step, so nothing else will answer it.) Longer than the poll
# function's timeout (modules/orchestrator/main.tf; tests/test_shared_constants.py checks it).
MIN_JOB_AGE_SECONDS = 300
# A member record is judged only this long after its last change: a slot reserved moments ago has no instance yet, and
# EC2's API may not show an instance launched moments ago.
MIN_RECORD_AGE_SECONDS = 300

Describe = Callable[[str], dict[str, Any] | None]


def now() -> datetime:
    """The pass's time (one reading per pass: marks, deadlines and ages are compared with it)."""
    return datetime.now(UTC)


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, list[str]]:
    log.start(context)
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
        "recovered": [],
        "returned": [],
        "forgotten": [],
        "dropped": [],
    }
    found = {instance["InstanceId"]: instance for instance in instances.find(config.stack)}
    records = _judge_pools(config, found, started, describe, summary)
    for instance in found.values():
        if instance["State"]["Name"] not in JUDGED_STATES or instance["InstanceId"] in summary["terminated"]:
            continue
        log.reset(instance_id=instance["InstanceId"])
        try:
            _judge_instance(config, instance, started, describe, summary, records)
        except Exception as exc:  # one instance must not stop the others; the next pass tries again
            log.error("cannot judge the instance", error=repr(exc))
    for item in jobs.unanswered():
        log.reset(job_id=item["job_id"], execution_arn=item.get("execution_arn"))
        try:
            _judge_job(config, item, started, describe, summary)
        except Exception as exc:
            log.error("cannot judge the job", error=repr(exc))
    log.reset()
    _count_reaped(len(summary["terminated"]))
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


def member_orphan_reason(
    config: Config,
    tag_values: dict[str, str],
    at: datetime,
    describe: Describe,
    records: dict[tuple[str, str], Member],
) -> str | None:
    """Why no live job or pool owns an instance of the registry (tagged with its member), or None when one does: its
    record exists, and is the pool's (no lease) or leased to a live job (whose tags, on an ephemeral instance, are
    judged as before: deadline plus grace)."""
    pool, member_id = tag_values.get(tags.POOL, ""), tag_values[tags.MEMBER]
    if pool not in config.actions_by_key():
        return f"unknown: its pool {pool!r} is not an action of this stack any more"
    record = records.get((pool, member_id)) or registry.member(pool, member_id)
    if record is None:
        return f"unknown: no member record {member_id} in pool {pool}"
    if record.lease_job is None:
        return None  # the pool's own: the keeper judges its health
    if tags.JOB_ID in tag_values:
        return orphan_reason(config, tag_values, at, describe)
    return None


def _judge_instance(
    config: Config,
    instance: dict[str, Any],
    at: datetime,
    describe: Describe,
    summary: dict[str, list[str]],
    records: dict[tuple[str, str], Member],
) -> None:
    instance_id, tag_values = instance["InstanceId"], instances.tag_values(instance)
    log.bind(job_id=tag_values.get(tags.JOB_ID), member_id=tag_values.get(tags.MEMBER))
    if tags.KEEP in tag_values:
        log.info("instance kept for debugging (ec2-action:keep); not judged", keep=tag_values[tags.KEEP])
        summary["kept"].append(instance_id)
        return
    if tags.MEMBER in tag_values:
        reason = member_orphan_reason(config, tag_values, at, describe, records)
    else:
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


# --- pools ----------------------------------------------------------------------------------------------------------


def lease_end(member: Member, at: datetime, describe: Describe) -> str | None:
    """Why the member's lease is over (its job's execution ended, or never existed), or None while the job may run."""
    execution_arn = member.lease_execution
    if not execution_arn and member.lease_job:
        execution_arn = (jobs.get(member.lease_job) or {}).get("execution_arn")
    execution = describe(execution_arn) if execution_arn else None
    if execution is not None:
        return None if execution["status"] == "RUNNING" else f"its job's execution {execution['status']}"
    leased_at = float(member.leased_at or member.state_changed_at or 0)
    if at.timestamp() - leased_at < MIN_JOB_AGE_SECONDS:
        return None  # its execution may be starting
    return f"no execution for its job {member.lease_job}"


def _judge_pools(
    config: Config,
    found: dict[str, dict[str, Any]],
    at: datetime,
    describe: Describe,
    summary: dict[str, list[str]],
) -> dict[tuple[str, str], Member]:
    """Recover the leases whose jobs ended, remove the records that hold nothing, drop the queue entries whose
    executions ended; the member records left, by (pool, member id)."""
    records: dict[tuple[str, str], Member] = {}
    for key in config.actions_by_key():
        log.reset(pool=key)
        try:
            for member in registry.members(key):
                if not _judge_member(member, found, at, describe, summary):
                    records[(member.pool, member.id)] = member
            _judge_queue(key, at, describe, summary)
        except Exception as exc:  # one pool must not stop the others; the next pass tries again
            log.error("cannot judge the pool", error=repr(exc))
    return records


def _judge_member(
    member: Member, found: dict[str, dict[str, Any]], at: datetime, describe: Describe, summary: dict[str, list[str]]
) -> bool:
    """Judge one member record; True when it was removed (or went back to the pool from a grant never picked up)."""
    log.bind(member_id=member.id, instance_id=member.instance_id, job_id=member.lease_job)
    instance = found.get(member.instance_id or "")
    live = instance is not None and instance["State"]["Name"] in JUDGED_STATES
    if member.lease_job:
        ended = lease_end(member, at, describe)
        if ended is None:
            return False
        if member.grant_token and member.state == registry.LEASED:  # granted, never picked up: never used
            queue.undo_grant(member, member.lease_job)
            log.warning("lease of a job that ended recovered: the member is back in the pool", reason=ended)
            summary["returned"].append(member.id)
            return True
        retired = _retire(member, f"lease recovered: {ended}", terminate=live)
        if retired:
            log.warning("lease of a job that ended recovered: member retired", reason=ended)
            summary["recovered"].append(member.id)
            if live and member.instance_id:
                summary["terminated"].append(member.instance_id)
        return retired
    if live:
        return False  # the pool's own instance: the keeper judges its health
    changed = float(member.state_changed_at or member.launched_epoch or 0)
    if at.timestamp() - changed < MIN_RECORD_AGE_SECONDS:
        return False
    state = instance["State"]["Name"] if instance else "gone"
    if _retire(member, f"its instance is {state}" if member.instance_id else "no instance", terminate=False):
        log.warning("record without a live instance or lease removed", state=member.state, instance_state=state)
        summary["forgotten"].append(member.id)
        return True
    return False


def _retire(member: Member, reason: str, terminate: bool) -> bool:
    """Retire the member (its instance terminated when it is live), removing its record and slot; False when the
    member changed meanwhile."""
    if terminate:
        return registry.retire(member, reason[:256])
    retiring = (
        member
        if member.state == registry.RETIRING
        else registry.mark(member, registry.RETIRING, retire_reason=reason[:256])
    )
    return retiring is not None and registry.remove(retiring)


def _judge_queue(action_key: str, at: datetime, describe: Describe, summary: dict[str, list[str]]) -> None:
    """Drop the queue entries whose executions ended (stopped or timed out while they waited)."""
    for entry in queue.entries(action_key):
        execution = describe(entry.execution_arn) if entry.execution_arn else None
        if execution is None and at.timestamp() - entry.enqueued_at < MIN_JOB_AGE_SECONDS:
            continue
        if execution is not None and execution["status"] == "RUNNING":
            continue
        if queue.drop(action_key, entry.job_id):
            log.warning(
                "queue entry of an ended execution dropped",
                job_id=entry.job_id,
                status=execution["status"] if execution else "none",
            )
            summary["dropped"].append(entry.job_id)


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


def _count_reaped(count: int) -> None:
    """ReapedInstances, one value per pass (0 too, so the alarm sees data; it fires on a Sum >= 1 over a reaper
    period), as an EMF line: no PutMetricData call, no IAM permission for one."""
    metrics.emit({"ReapedInstances": count})
