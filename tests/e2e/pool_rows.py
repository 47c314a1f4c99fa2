"""The pool matrix's rows (issue "Instance pools", "Fault and bad-input rows"): what goes wrong around a warm or a
stopped pool and what the module must do about it. Run by test_pool_matrix.py and `make faults` through
harness.pool_matrix, each deployment's rows one after another, each from the pool at rest.

Each scenario starts its jobs, injects its fault, waits for the jobs, and checks what the issue says of it; the
runner adds the invariants (terminal state with the cause, one execution per job, nothing left beyond the minimum
after the keeper's and the reaper's passes, the registry's counter equal to its records).
"""

from __future__ import annotations

import json
from typing import Any

from emulator import faults, metrics
from emulator.ec2 import throttling
from harness import matrix
from harness.pool_matrix import Job, PlanRow, PoolRow, PoolRun, wait_for

STOPPED_BY_HAND = "ended with status ABORTED without reporting the job"


def _ran_on(run: PoolRun, label: str, acquired: list[dict[str, Any]]) -> dict[str, Any]:
    """The instance a job's build ran on (the last one acquire handed it)."""
    run.check(bool(acquired), f"job {label} was never handed an instance")
    return acquired[-1] if acquired else {}


def _minimum_restored(run: PoolRun, after: str) -> list[dict[str, Any]]:
    """The keeper's passes bring the ready members back to the minimum; the ready members then."""
    unrest = run.settle()
    run.check(not unrest, f"the keeper did not restore the pool's minimum {after}: {unrest}")
    return run.ready_members()


# --- warm pool --------------------------------------------------------------------------------------------------------


def ready_instance_terminated(run: PoolRun) -> None:
    """The ready member's instance is terminated behind the pool's back, then a job comes. The keeper's schedule is
    held meanwhile, so the job, not the keeper, is the first to meet the dead member: it must get another instance."""
    [member] = run.ready_members()
    job = run.job("a")
    with run.paused_keeper_schedule():
        run.deployment.client("ec2").terminate_instances(InstanceIds=[member["instance_id"]])
        run.start(job)
        run.wait(job)
    ran_on = _ran_on(run, "a", run.acquisitions(job))
    run.check(
        ran_on.get("instance_id") != member["instance_id"],
        f"job a was handed the terminated instance {member['instance_id']}",
    )
    ready = _minimum_restored(run, "after a ready instance was terminated")
    run.check(
        all(m["instance_id"] != member["instance_id"] for m in ready),
        "the terminated instance is still a ready member",
    )


def execution_stopped_while_building(run: PoolRun) -> None:
    """Someone stops the leasing job's execution (StopExecution) while its build runs: the reaper answers the job,
    recovers the lease and retires the instance; the keeper restores the minimum."""
    # The build waits on a gate the row never opens: it is still running when the execution is stopped.
    job = run.job("a", run.gated_command("stopped"), matrix.FAILED, "JobFailed", STOPPED_BY_HAND)
    run.start(job)
    instance = run.build_running(job)
    run.deployment.client("stepfunctions").stop_execution(
        executionArn=run.execution_arn(job), error="Manual", cause="stopped by hand"
    )
    wait_for(lambda: _reaped_until_answered(run, job), 60, "the reaper never answered the stopped job")
    run.wait(job)
    state = run.instance_state(instance["instance_id"])
    run.check(state in ("shutting-down", "terminated"), f"the stopped job's instance is {state}, not retired")
    run.check(
        all(m["id"] != instance["member_id"] for m in run.members()),
        f"the stopped job's member {instance['member_id']} is still in the registry",
    )
    _minimum_restored(run, "after the lease was recovered")


def _reaped_until_answered(run: PoolRun, job: Job) -> bool:
    run.reap()
    execution = run.deployment.client("codepipeline").get_pipeline_execution(
        pipelineName=job.pipeline, pipelineExecutionId=job.execution_id
    )["pipelineExecution"]
    return execution["status"] not in ("InProgress", "Stopping")


def race_for_the_last_ready_instance(run: PoolRun) -> None:
    """One build holds an instance and the keeper has brought the pool back to one ready: the cap (2) is reached.
    Two jobs start at once: one leases the ready instance, the other queues and is served when capacity frees."""
    hold = run.job("hold", run.gated_command("hold"))
    run.start(hold)
    run.build_running(hold)
    run.keep_until(lambda: len(run.ready_members()) == 1 and run.counter()["instances"] == 2, 30,
                   "the keeper did not bring the pool back to one ready instance beside the held one")  # fmt: skip
    racers = [run.job("b"), run.job("c")]
    run.start(*racers)
    wait_for(lambda: all(run.exited(j, "AcquireInstance") for j in racers), 60, "the racers never acquired")
    run.open_gate("hold")
    run.wait(hold, *racers)
    queued = [j.label for j in racers if run.entered(j, "WaitForCapacity")]
    leased = [j.label for j in racers if not run.entered(j, "WaitForCapacity")]
    run.check(len(queued) == 1 and len(leased) == 1, f"leased at once: {leased}; queued: {queued}; expected one each")
    for racer in racers:
        handed = run.acquisitions(racer)
        run.check(len(handed) == 1, f"job {racer.label} was handed {len(handed)} instances, expected 1")


# Two grants of one pass answer their tokens a few milliseconds apart, and two passes at once may answer in either
# order what they granted in queue order: only a job served this much before one queued ahead of it overtook it.
GRANT_TOLERANCE_SECONDS = 0.25


def exhausted_pool_serves_in_order(run: PoolRun) -> None:
    """Four jobs one after another against a cap of 2: those beyond it queue, and are served in the order they
    queued (the queue's own order: its entries' keys, as the enqueue function logged them), each once."""
    jobs = [run.job(label, "sleep 1; echo built") for label in "abcd"]
    run.start_one_after_another(jobs)
    run.wait(*jobs)
    labels = {run.job_id(job): job.label for job in jobs}
    entries = sorted({line["entry"]: line["job_id"] for line in run.logged("enqueue", "job queued")}.items())
    queue_order = [labels[job_id] for _, job_id in entries if job_id in labels]
    run.check(len(queue_order) >= 2, f"{len(queue_order)} job(s) queued; with a cap of 2, at least 2 of 4 must")
    grants = {job.label: run.exited(job, "WaitForCapacity") for job in jobs if job.label in queue_order}
    run.check(all(len(times) == 1 for times in grants.values()), f"grants per queued job: {grants}")
    served = {label: times[0] for label, times in grants.items() if times}
    overtaken = [
        f"{later} before {earlier}"
        for index, earlier in enumerate(queue_order)
        for later in queue_order[index + 1 :]
        if earlier in served and later in served and served[later] < served[earlier] - GRANT_TOLERANCE_SECONDS
    ]
    run.check(not overtaken, f"queued in the order {queue_order}, but served {', '.join(overtaken)}")
    for job in jobs:
        handed = run.acquisitions(job)
        run.check(len(handed) == 1, f"job {job.label} was handed {len(handed)} instances, expected 1")


def configuration_changes_while_building(run: PoolRun) -> None:
    """The pool's launch template gets a new version while a build runs (as a terraform apply changing the AMI or
    the template does: every function's EC2_ACTION_CONFIG names the new version). The build finishes and succeeds,
    its instance is retired at release, and the keeper rotates the pool: no ready member of the old configuration."""
    job = run.job("a", run.gated_command("rotate"))
    run.start(job)
    building = run.build_running(job)
    old = next(m["config"] for m in run.members() if m["id"] == building["member_id"])
    new_version = _new_launch_template_version(run)
    run.keep_until(
        lambda: _rotated(run, old), 60, f"the keeper never rotated the pool to launch template {new_version}"
    )
    run.open_gate("rotate")
    run.wait(job)
    state = run.instance_state(building["instance_id"])
    run.check(state in ("shutting-down", "terminated"), f"the build's instance is {state}: not retired at release")
    released = run.released(job)
    run.check(building["member_id"] in released.get("retired", []), f"release did not retire the member: {released}")
    ready = _minimum_restored(run, "after the rotation")
    run.check(all(m["config"] != old for m in ready), "a ready member still has the old configuration")


def _rotated(run: PoolRun, old: str) -> bool:
    ready = run.ready_members()
    return bool(ready) and all(m["config"] != old for m in ready)


def _new_launch_template_version(run: PoolRun) -> str:
    """A new version of the stack's launch template, made default and named in every function's configuration, as
    a terraform apply changing the template does (the metadata hop limit raised, e.g. for containers on the
    builders); the version."""
    lambdas = run.deployment.client("lambda")
    prefix = f"{run.deployment.outputs['name_prefix']}-"
    functions = [f for f in lambdas.list_functions()["Functions"] if f["FunctionName"].startswith(prefix)]
    configured = [f for f in functions if "EC2_ACTION_CONFIG" in (f.get("Environment") or {}).get("Variables", {})]
    current = json.loads(configured[0]["Environment"]["Variables"]["EC2_ACTION_CONFIG"])
    linux = current["launch_templates"]["Linux"]  # the example's builders are Linux
    template = linux["id"]
    ec2 = run.deployment.client("ec2")
    [source] = ec2.describe_launch_template_versions(LaunchTemplateId=template, Versions=[str(linux["version"])])[
        "LaunchTemplateVersions"
    ]
    data = {key: value for key, value in source["LaunchTemplateData"].items() if value not in ("", None, [], {})}
    data["MetadataOptions"] = {**data.get("MetadataOptions", {}), "HttpPutResponseHopLimit": 2}
    created = ec2.create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData=data, VersionDescription="metadata hop limit 2"
    )
    version = str(created["LaunchTemplateVersion"]["VersionNumber"])
    ec2.modify_launch_template(LaunchTemplateId=template, DefaultVersion=version)
    for function in configured:
        variables = dict(function["Environment"]["Variables"])
        settings = json.loads(variables["EC2_ACTION_CONFIG"])
        settings["launch_templates"]["Linux"]["version"] = version
        variables["EC2_ACTION_CONFIG"] = json.dumps(settings, separators=(",", ":"))
        lambdas.update_function_configuration(
            FunctionName=function["FunctionName"], Environment={"Variables": variables}
        )
    return version


OTHER_INSTANCE_TYPE = {"InstanceType": "t4g.large"}
# A token per AWS minute is one every 3 s at the e2e time scale (0.05): the burst's launches, about a second apart,
# meet an empty bucket, beyond what the SDK's own three attempts ride out. (A refill of 0.5 per AWS second, 10 per
# second here, was never short: no request of the burst was throttled.)
THROTTLED_REFILL_PER_SECOND = 1 / 60


def throttled_burst(run: PoolRun) -> None:
    """EC2 throttling on and CreateFleet's request bucket shrunk to one token refilled once per AWS minute, then a
    burst of four jobs that each launch (another instance type than the pool's: ephemeral instances under the same
    cap; jobs of the pool's own configuration would lease its instances and launch almost nothing). Every job
    succeeds once: the launches the bucket refuses are retried until it refills, nothing is lost."""
    before = metrics.throttled_requests()["ec2:CreateFleet"]
    throttling.enable(True)
    faults.throttle("CreateFleet", bucket=1, refill_per_second=THROTTLED_REFILL_PER_SECOND)
    jobs = [run.job(label, "sleep 1; echo built", configuration=OTHER_INSTANCE_TYPE) for label in "abcd"]
    run.start(*jobs)
    run.wait(*jobs)
    throttled = metrics.throttled_requests()["ec2:CreateFleet"] - before
    run.check(throttled > 0, "no CreateFleet request was throttled: the burst did not meet throttling")
    for job in jobs:
        handed = run.acquisitions(job)
        run.check(len(handed) == 1, f"job {job.label} was handed {len(handed)} instances, expected 1")


WARM_ROWS: list[PoolRow] = [
    PoolRow(
        "ready-terminated",
        "the ready instance is terminated behind the pool's back before a job takes it: replaced, the job succeeds "
        "on another instance, the minimum restored",
        ready_instance_terminated,
    ),
    PoolRow(
        "lease-stopped-by-hand",
        "the leasing job's execution is stopped by hand while its build runs: the reaper answers the job, recovers "
        "the lease and retires the instance, the minimum restored",
        execution_stopped_while_building,
    ),
    PoolRow(
        "race-last-ready",
        "two jobs race for the last ready instance at the cap: one leases, one queues and is served later",
        race_for_the_last_ready_instance,
    ),
    PoolRow(
        "exhausted-in-order",
        "four jobs one after another against a cap of 2: the queued ones served in the order they queued, none twice",
        exhausted_pool_serves_in_order,
    ),
    PoolRow(
        "config-changes-mid-build",
        "the launch template changes while a build runs: the build succeeds, its instance is retired at release, "
        "the pool rotates",
        configuration_changes_while_building,
    ),
    PoolRow(
        "throttled-burst",
        "EC2 throttling on, CreateFleet's bucket 1 token refilled once per minute, a burst of 4 jobs that each "
        "launch: CreateFleet throttled, every job succeeds once",
        throttled_burst,
    ),
]


# --- stopped pool -----------------------------------------------------------------------------------------------------


def no_capacity_to_start(run: PoolRun) -> None:
    """StartInstances answers InsufficientInstanceCapacity for the stopped member's instance: the job succeeds on a
    freshly launched instance, and the one that could not start is terminated."""
    [member] = run.ready_members()
    faults.no_capacity_to_start(lambda instance: instance.id == member["instance_id"])
    job = run.job("a")
    run.start(job)
    run.wait(job)
    ran_on = _ran_on(run, "a", run.acquisitions(job))
    run.check(ran_on.get("boot") == "launch", f"job a's instance boot: {ran_on.get('boot')!r}, expected 'launch'")
    run.check(ran_on.get("instance_id") != member["instance_id"], "job a ran on the instance that could not start")
    state = run.instance_state(member["instance_id"])
    run.check(state in ("shutting-down", "terminated"), f"the instance that could not start is {state}")
    _minimum_restored(run, "after the fresh launch")


STOPPED_ROWS: list[PoolRow] = [
    PoolRow(
        "start-no-capacity",
        "StartInstances: InsufficientInstanceCapacity for the stopped instance: the job succeeds on a fresh launch",
        no_capacity_to_start,
    ),
]


# --- plan time --------------------------------------------------------------------------------------------------------

PLAN_ROWS: list[PlanRow] = [
    PlanRow(
        "cap-of-zero",
        "max_concurrent_builds = 0",
        {"capacity_strategy": "warm", "pool_min_ready": 0, "max_concurrent_builds": 0},
        "a cap of 0 would queue every job forever",
    ),
    PlanRow(
        "minimum-above-cap",
        "a warm pool with pool_min_ready = 3 and max_concurrent_builds = 2",
        {"capacity_strategy": "warm", "pool_min_ready": 3, "max_concurrent_builds": 2},
        "the pool's minimum cannot exceed its cap",
    ),
]
