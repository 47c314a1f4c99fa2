"""Every change the emulator makes to moto, in one table, applied once by `apply()`.

Each `Override` names what it adds to moto or changes in it (a class's method or property, a module's attribute, a
setting), the AWS behaviour that gives, and why moto's own falls short. `apply()` checks moto's version first (the
emulator extends one pinned version: another fails at once with a message naming it, not with a strange error
later), then installs every entry, checking that what it adds is not in moto already and that what it wraps or
replaces still is. `server.start()` and the handler tests' fixtures call it; calling it again does nothing.

Where moto allows it the emulator extends rather than replaces: new operations are response methods that moto's
dispatch finds by name, wrappers call moto's own method, and SSM commands are a subclass of moto's `Command`. The
private methods still replaced say why in their entry.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MOTO_VERSION = "5.2.5"  # pyproject.toml and requirements.lock pin the same (tests/test_emulator/test_patches.py)

ADDS, WRAPS, REPLACES, CONFIGURES = "adds", "wraps", "replaces", "configures"


class MotoVersionError(RuntimeError):
    """moto is not the version the emulator extends."""


@dataclass(frozen=True)
class Override:
    target: str  # "module:Class.attribute" or "module:attribute"
    kind: str  # ADDS (absent in moto), WRAPS (calls moto's own), REPLACES, CONFIGURES (a moto setting)
    provides: str  # the AWS behaviour
    why: str  # why moto's own falls short
    value: Callable[[Any], Any]  # moto's original (None when added) -> what takes its place

    def apply(self) -> Any:
        """Install the entry; returns moto's original (None when added)."""
        owner, name = _resolve(self.target)
        original = getattr(owner, name, None)
        if (original is None) != (self.kind == ADDS):
            state = "already has" if original is not None else "no longer has"
            raise MotoVersionError(f"moto {installed_moto_version()} {state} {self.target}: review this override")
        setattr(owner, name, self.value(original))
        return original


def _resolve(target: str) -> tuple[Any, str]:
    module_name, _, path = target.partition(":")
    *owners, name = path.split(".")
    owner: Any = importlib.import_module(module_name)
    for part in owners:
        owner = getattr(owner, part)
    return owner, name


def _lazy(module: str, name: str, wrap: bool = False) -> Callable[[Any], Any]:
    """The value `name` of the emulator's `module` (called with moto's original when `wrap`), imported when applied."""

    def value(original: Any) -> Any:
        found = getattr(importlib.import_module(f"emulator.{module}"), name)
        return found(original) if wrap else found

    return value


def _operations(target_class: str, module: str, kind: str, names: dict[str, str], why: str) -> list[Override]:
    """One entry per operation served by a response method (moto's dispatch calls the method named like it)."""
    return [
        Override(f"{target_class}.{name}", kind, provides, why, _lazy(module, name)) for name, provides in names.items()
    ]


def _lambda_runs_code(config: dict[str, Any]) -> dict[str, Any]:
    config.setdefault("lambda", {})["use_docker"] = True
    return config


def _aws_time(name: str) -> Callable[[Any], Any]:
    def value(_original: Any) -> Any:
        from emulator import clock
        from emulator.stepfunctions.interpreter import AwsTimeEvent

        if name == "time":
            return types.SimpleNamespace(sleep=clock.sleep)
        if name == "threading":
            return types.SimpleNamespace(Event=AwsTimeEvent)
        return AwsTimeEvent

    return value


def _static(module: str, name: str) -> Callable[[Any], Any]:
    return lambda original: staticmethod(_lazy(module, name)(original))


def _property(module: str, name: str) -> Callable[[Any], Any]:
    return lambda original: property(_lazy(module, name)(original))


CP_BACKEND = "moto.codepipeline.models:CodePipelineBackend"
CP_RESPONSE = "moto.codepipeline.responses:CodePipelineResponse"
SSM_RESPONSE = "moto.ssm.responses:SimpleSystemManagerResponse"
SFN_BACKEND = "moto.stepfunctions.parser.models:StepFunctionsParserBackend"
SFN_RESPONSE = "moto.stepfunctions.responses:StepFunctionResponse"
ASL = "moto.stepfunctions.parser.asl"
NO_CUSTOM_ACTIONS = "moto's CodePipeline has pipelines only: no custom action types, no jobs, no pipeline state"
CP_OPERATIONS = {
    "create_custom_action_type": "CreateCustomActionType: validated like the API (names, properties, artifacts, tags)",
    "delete_custom_action_type": "DeleteCustomActionType; a deleted version comes back only with its old definition",
    "list_action_types": "ListActionTypes (custom action types)",
    "poll_for_jobs": "PollForJobs: queued and unacknowledged jobs of a type, ActionTypeNotFound for a deleted one",
    "acknowledge_job": "AcknowledgeJob with the job's nonce",
    "get_job_details": "GetJobDetails",
    "put_job_success_result": "PutJobSuccessResult, continuation tokens (a new job for the same action)",
    "put_job_failure_result": "PutJobFailureResult",
    "get_pipeline_state": "GetPipelineState: stage and action states of the latest runs",
    "stop_pipeline_execution": "StopPipelineExecution (stop and abandon)",
}

OVERRIDES: list[Override] = [
    # -- every service ------------------------------------------------------------------------------------------------
    Override(
        "moto.core.responses:BaseResponse.call_action", WRAPS,
        "injected API errors in the called service's own protocol; a Lambda killed after an API call was served",
        "moto has no fault injection; every service that answers through call_action is covered by this one hook",
        _lazy("faults", "call_action", wrap=True),
    ),
    Override(
        "moto.moto_server.werkzeug_app:DomainDispatcherApplication.__call__", WRAPS,
        "AWS API requests counted per service (make bench)",
        "moto counts nothing; its WSGI dispatcher is the one place every HTTP request passes",
        _lazy("metrics", "counting_requests", wrap=True),
    ),
    # -- EC2 ----------------------------------------------------------------------------------------------------------
    Override(
        "moto.ec2.models:EC2Backend.create_launch_template", WRAPS,
        "a launch template's own tags (ResourceType launch-template) stay out of its LaunchTemplateData",
        "moto copies them into the data, so every Terraform plan of a tagged launch template shows a change",
        _lazy("ec2.models", "create_launch_template", wrap=True),
    ),
    Override(
        "moto.ec2.models:EC2Backend.run_instances", WRAPS,
        "every instance of a RunInstances call gets the instance profile and HibernationOptions (the request's or "
        "the launch template's); the SSM Agent boots with the instance (its registration clock starts); pending "
        "and running state-change events; a Spot Instance's SpotInstanceRequestId and drawn interruption",
        "moto associates the requested profile with the first instance only and ignores the launch template's "
        "profile and HibernationOptions",
        _lazy("ec2.instances", "run_instances", wrap=True),
    ),
    *_operations(
        "moto.ec2.responses.instances:InstanceResponse", "ec2.responses", REPLACES,
        {
            "stop_instances": "StopInstances: running -> stopping -> stopped in AWS time (a state-change event "
            "each); Hibernate only for an "
            "instance launched with hibernation configured (UnsupportedHibernationConfiguration); "
            "IncorrectInstanceState for a pending or terminated one; UnsupportedOperation for a Spot Instance (of a "
            "one-time request)",
            "start_instances": "StartInstances: stopped -> pending -> running in AWS time (a state-change event "
            "each), the SSM Agent back Online "
            "after its reconnect; IncorrectInstanceState for a stopping or terminated one; "
            "InsufficientInstanceCapacity (HTTP 500) injected by faults.no_capacity_to_start",
            "terminate_instances": "TerminateInstances answers an instance terminated before as terminated -> "
            "terminated",
        },
        "moto stops and starts at once, ignores Hibernate, starts a stopping or terminated instance and always "
        "answers stopping / pending / shutting-down; these response methods are where it reads the request",
    ),
    Override(
        "moto.ec2.responses.fleets:Fleets.create_fleet", WRAPS,
        "CreateFleet of Type instant: overrides tried by the allocation strategy, per-pool Spot and On-Demand "
        "capacity (faults.fleet_capacity) with EC2's InsufficientInstanceCapacity per override, every instance "
        "launched through RunInstances' path with the launch template (user data, network interfaces, instance "
        "profile, metadata options, tags) and the override's type, subnet, image and block devices; Spot Instances "
        "with InstanceLifecycle spot and a SpotInstanceRequestId; ClientToken idempotency",
        "moto launches only the cheapest (or every, for diversified) launch spec, ignores the launch template's "
        "network interfaces, metadata options and instance profile and the override's image and block devices, "
        "never runs out of capacity and answers no Errors; maintain and request fleets stay moto's",
        _lazy("ec2.responses", "create_fleet", wrap=True),
    ),
    Override(
        "moto.ec2.models:EC2Backend.terminate_instances", WRAPS,
        "a terminated instance's disk (the SSM Agent's directory tree for it) goes, and its stop or start walk ends; "
        "terminating an instance already terminated succeeds and changes nothing; shutting-down and terminated "
        "state-change events; EC2's own StateReason for a Spot interruption",
        "moto's instances have no disk and no walk, and moto terminates a terminated instance again, failing with "
        "InvalidNetworkInterfaceID.NotFound when its first termination deleted its network interface",
        _lazy("ec2.instances", "terminate_instances", wrap=True),
    ),
    Override(
        "moto.ec2.responses:EC2Response.call_action", WRAPS,
        "EC2's request throttling: token buckets with AWS's sizes and refill rates (AWS time) for RunInstances, "
        "CreateFleet, StartInstances, StopInstances, TerminateInstances, DescribeInstances; RequestLimitExceeded "
        "(HTTP 503)",
        "moto never throttles; EC2Response inherits BaseResponse.call_action (the fault hook above), which this "
        "wraps for EC2 only",
        _lazy("ec2.throttling", "call_action", wrap=True),
    ),
    # -- DynamoDB -----------------------------------------------------------------------------------------------------
    Override(
        "moto.dynamodb.responses:DynamoHandler.call_action", WRAPS,
        "conditional writes and TransactWriteItems serializable with one another; no read sees a transaction half "
        "applied",
        "moto serves requests on many threads without a lock: two conditional writes can both pass their condition, "
        "and a cancelled transaction restores a copy of the table that undoes other requests' writes",
        _lazy("dynamodb.responses", "serialized", wrap=True),
    ),
    # -- Lambda -------------------------------------------------------------------------------------------------------
    Override(
        "moto.core.config:default_user_config", CONFIGURES,
        "Lambda functions run their code (use_docker: true sends invocations to _invoke_lambda, replaced below)",
        "without it moto answers invocations with a canned payload and never runs the code",
        _lambda_runs_code,
    ),
    Override(
        "moto.awslambda.models:LambdaFunction._invoke_lambda", REPLACES,
        "a deployed zip (and its layers) runs in a warm Python worker process, like a Lambda execution environment",
        "moto runs code in Docker only; this private method is the one place it runs a function's code, and the "
        "LambdaFunction objects are created inside moto's backend (no class of ours to subclass into it)",
        _lazy("awslambda.runtime", "invoke_lambda"),
    ),
    Override(
        "moto.awslambda.models:LambdaFunction.invoke", REPLACES,
        "Unhandled function errors, asynchronous (Event) invocations with Lambda's retries, the log tail",
        "moto runs Event invocations synchronously and reports errors differently from the Python runtime",
        _lazy("awslambda.runtime", "invoke"),
    ),
    # -- EventBridge --------------------------------------------------------------------------------------------------
    Override(
        "moto.events.models:Rule.send_to_targets", WRAPS,
        "only ENABLED rules deliver; Lambda and Step Functions targets (asynchronously), SQS with the whole event; "
        "Input, InputPath, InputTransformer",
        "moto raises NotImplementedError for Lambda and Step Functions targets, ignores the rule's state and drops "
        "the event's account for SQS; moto's own still serves the targets it supports",
        _lazy("events.models", "send_to_targets", wrap=True),
    ),
    # -- Systems Manager ----------------------------------------------------------------------------------------------
    *_operations(
        SSM_RESPONSE, "ssm.responses", REPLACES,
        {
            "send_command": "SendCommand: Online instances only, parameters checked; the agent runs the document",
            "get_command_invocation": "GetCommandInvocation: per-step status and output as the agent reports them",
            "list_commands": "ListCommands: Filters (InvokedAfter/Before, Status, ExecutionStage, DocumentName), "
            "MaxResults and NextToken, the status the agent reports",
        },
        "moto records the command and never runs it; its invocation has no real status or output, and its "
        "ListCommands ignores Filters and paging",
    ),
    *_operations(
        SSM_RESPONSE, "ssm.responses", ADDS,
        {
            "describe_instance_information": "DescribeInstanceInformation: instances whose agent registered",
            "list_command_invocations": "ListCommandInvocations (with Details: the plugins' output)",
            "cancel_command": "CancelCommand: the running step is killed",
        },
        "moto has no such operation",
    ),
    # -- Step Functions -----------------------------------------------------------------------------------------------
    Override(
        f"{ASL}.utils.json_path:extract_json", REPLACES,
        "a definite JSONPath yields its value, an indefinite one ([*], .., filters, slices) a list",
        "moto's returns a list for some definite paths; replaced in every interpreter module that imported it "
        "(a module function has no other hook)",
        _lazy("stepfunctions.interpreter", "extract_json_everywhere", wrap=True),
    ),
    Override(
        f"{ASL}.component.common.retry.retrier_decl:time", REPLACES,
        "Retry intervals in AWS time (emulator.clock)", "moto sleeps real seconds through this module's `time`",
        _aws_time("time"),
    ),
    Override(
        f"{ASL}.component.state.exec.execute_state:threading", REPLACES,
        "task TimeoutSeconds and HeartbeatSeconds in AWS time",
        "moto waits real seconds on this module's threading.Event",
        _aws_time("threading"),
    ),
    Override(
        f"{ASL}.eval.callback.callback:Event", REPLACES,
        "callback (task token) waits in AWS time", "moto waits real seconds on threading.Event", _aws_time("Event"),
    ),
    Override(
        f"{ASL}.component.state.wait.wait_function.wait_function:WaitFunction._eval_body", REPLACES,
        "Wait states last their seconds in AWS time and end early when the execution stops",
        "moto sleeps real seconds; _eval_body is how the interpreter runs every state (no public hook), and "
        "WaitFunction's subclasses are built by moto's parser",
        _lazy("stepfunctions.interpreter", "wait_state_body"),
    ),
    *[
        Override(
            f"{SFN_BACKEND}.{name}", REPLACES,
            f"{operation} on a closed token answers TaskTimedOut, on an unknown one InvalidToken, as AWS does",
            "moto's delivers to a token whose task has ended",
            _lazy("stepfunctions.models", name),
        )
        for name, operation in (
            ("send_task_success", "SendTaskSuccess"),
            ("send_task_failure", "SendTaskFailure (with its cause)"),
            ("send_task_heartbeat", "SendTaskHeartbeat"),
        )
    ],
    Override(
        f"{ASL}.eval.callback.callback:CallbackEndpoint.interrupt_all", WRAPS,
        "a task token is closed once its task ends (success, failure, timeout)",
        "moto leaves the endpoint open, so a late SendTask* call still succeeds",
        _lazy("stepfunctions.models", "close_on_interrupt", wrap=True),
    ),
    Override(
        f"{SFN_BACKEND}.stop_execution", WRAPS,
        "StopExecution closes the execution's task tokens (SendTaskSuccess/Failure on them then answers "
        "TaskTimedOut) and returns once the execution is ABORTED: DescribeExecution right after it shows ABORTED",
        "moto's interpreter only signals the execution's worker thread, which marks it ABORTED some time later, and "
        "not before a task waiting on a token ends: that token still takes an answer",
        _lazy("stepfunctions.models", "stop_synchronously", wrap=True),
    ),
    Override(
        f"{ASL}.eval.environment:Environment.set_error", WRAPS,
        "a stopped execution stays ABORTED when the task its stop woke up fails",
        "moto's set_error replaces any program state, so the woken task's failure would make the execution FAILED",
        _lazy("stepfunctions.models", "stopped_stays_stopped", wrap=True),
    ),
    Override(
        f"{ASL}.eval.event.event_manager:EventManager.add_event", WRAPS,
        "after StopExecution an execution's history gains ExecutionAborted only",
        "moto records the failure of the task the stop woke up (TaskTimedOut) before ExecutionAborted",
        _lazy("stepfunctions.models", "nothing_after_the_stop", wrap=True),
    ),
    Override(
        f"{SFN_RESPONSE}.send_task_failure", REPLACES,
        "SendTaskFailure keeps its cause", "moto's response drops the cause",
        _lazy("stepfunctions.responses", "send_task_failure"),
    ),
    *[
        Override(
            f"{ASL}.component.state.exec.state_task.service.state_task_service_aws_sdk:StateTaskServiceAwsSdk.{name}",
            REPLACES,
            f"aws-sdk integrations: {direction} get the API's member casing from botocore's operation model",
            f"moto's casing is wrong for several services; {name} is the aws-sdk task's only hook for it (private)",
            _lazy("stepfunctions.interpreter", name.lstrip("_")),
        )
        for name, direction in (("_normalise_parameters", "parameters"), ("_normalise_response", "responses"))
    ],
    *_operations(
        SFN_RESPONSE, "stepfunctions.responses", ADDS,
        {
            "validate_state_machine_definition": "ValidateStateMachineDefinition (Terraform's aws_sfn_state_machine "
            "calls it): grammar and transition graph diagnostics",
            "list_state_machine_versions": "ListStateMachineVersions (Terraform reads it)",
        },
        "moto has no such operation",
    ),
    Override(
        f"{SFN_BACKEND}._validate_definition", REPLACES,
        "CreateStateMachine and UpdateStateMachine reject definitions whose transitions name missing states",
        "moto checks the grammar only; this private static method is what its create and update call",
        _static("stepfunctions.models", "check_definition"),
    ),
    # -- CloudWatch ---------------------------------------------------------------------------------------------------
    Override(
        "moto.cloudwatch.models:CloudWatchBackend.get_metric_statistics", REPLACES,
        "GetMetricStatistics reads one metric: the namespace, name and exact dimension set asked for",
        "moto matches the query's dimensions as a subset, so data published with more dimensions (or under other "
        "dimension sets) is mixed in; its implementation has no hook for the match",
        _lazy("cloudwatch.models", "get_metric_statistics"),
    ),
    Override(
        "moto.cloudwatch.models:CloudWatchBackend.get_metric_data", WRAPS,
        "GetMetricData's MetricStat queries read one metric: namespace, name and exact dimension set",
        "moto sums every dimension set of a name when the query has no dimensions and ignores the namespace when "
        "it has some; metric math expressions still see moto's own results",
        _lazy("cloudwatch.models", "wrap_get_metric_data", wrap=True),
    ),
    # -- CodePipeline -------------------------------------------------------------------------------------------------
    *[
        Override(f"{CP_BACKEND}.{name}", ADDS, provides, NO_CUSTOM_ACTIONS, _lazy("codepipeline.models", name))
        for name, provides in CP_OPERATIONS.items()
    ],
    *_operations(CP_RESPONSE, "codepipeline.responses", ADDS, CP_OPERATIONS, NO_CUSTOM_ACTIONS),
    Override(
        f"{CP_BACKEND}.start_pipeline_execution", REPLACES,
        "a started execution really runs (S3 source actions, custom actions' jobs, events)",
        "moto records the execution and never runs it",
        _lazy("codepipeline.models", "start_pipeline_execution"),
    ),
    *[
        Override(f"{CP_BACKEND}.{name}", WRAPS, provides, why, _lazy("codepipeline.models", factory, wrap=True))
        for name, factory, provides, why in (
            ("list_tags_for_resource", "wrap_list_tags_for_resource", "tags of action types too", NO_CUSTOM_ACTIONS),
            ("tag_resource", "wrap_tag_resource", "tags of action types too", NO_CUSTOM_ACTIONS),
            ("untag_resource", "wrap_untag_resource", "tags of action types too", NO_CUSTOM_ACTIONS),
            (
                "create_pipeline", "wrap_create_pipeline",
                "CreatePipeline rejects a Custom action whose type does not exist", "moto accepts any action type",
            ),
            (
                "update_pipeline", "wrap_update_pipeline",
                "UpdatePipeline rejects a Custom action whose type does not exist", "moto accepts any action type",
            ),
            (
                "delete_pipeline", "wrap_delete_pipeline",
                "DeletePipeline forgets the pipeline's state (a new one of the same name starts blank)",
                "moto keeps no pipeline state to forget",
            ),
            (
                "reset", "closing_reset",
                "a reset backend's running pipelines stop", "moto's reset knows nothing of the runner threads",
            ),
        )
    ],
    Override(
        "moto.codepipeline.models:PipelineExecution.to_dict", WRAPS,
        "GetPipelineExecution returns the source revisions the run recorded (artifactRevisions)",
        "moto's executions never run, so they have none",
        _lazy("codepipeline.models", "execution_to_dict", wrap=True),
    ),
    Override(
        "moto.codepipeline.models:CodePipeline.metadata", REPLACES,
        "GetPipeline and ListPipelines metadata with epoch-second timestamps, as the JSON protocol sends them",
        "moto sends ISO strings, which the AWS SDK for Go (Terraform) rejects",
        _property("codepipeline.models", "pipeline_metadata"),
    ),
]  # fmt: skip

_lock = threading.Lock()
_applied = False
ORIGINALS: dict[str, Any] = {}  # target -> what moto had there before apply() (None when added)


def installed_moto_version() -> str:
    return importlib.metadata.version("moto")


def check_moto_version() -> None:
    """Fail with a clear message unless the installed moto is the one the emulator extends."""
    installed = installed_moto_version()
    if installed != MOTO_VERSION:
        raise MotoVersionError(
            f"The local cloud extends moto {MOTO_VERSION} (pinned in pyproject.toml and requirements.lock), "
            f"but moto {installed} is installed: run `make` targets from their virtualenv "
            f"(pip install -c requirements.lock -e '.[dev]'), or review tests/emulator/patches.py for the new version."
        )


def apply() -> None:
    """Check moto's version, then install every override (once per process; later calls do nothing)."""
    global _applied
    with _lock:
        if _applied:
            return
        check_moto_version()
        for override in OVERRIDES:
            ORIGINALS[override.target] = override.apply()
        _applied = True


def table() -> str:
    """The registry as a Markdown table (what, how, the AWS behaviour, why moto's own falls short)."""
    lines = ["| moto | how | AWS behaviour | why moto's own falls short |", "|---|---|---|---|"]
    lines += [f"| `{o.target}` | {o.kind} | {o.provides} | {o.why} |" for o in OVERRIDES]
    return "\n".join(lines)
