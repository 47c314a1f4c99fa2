"""Values that Terraform and the Lambda code must agree on, read from both sides: a test fails when one side changes.

Terraform's side is read from the .tf files with python-hcl2 (no Terraform run needed); the Python side is the
constant the Lambda code uses.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
from typing import Any

from ec2_action import drain, errors, messages, queue, registration, tags
from ec2_action.handlers import acquire, reap
from test_terraform_static import REPO_ROOT, parsed

HANDLERS_DIR = REPO_ROOT / "lambda_src" / "ec2_action" / "handlers"
STATE_MACHINE = REPO_ROOT / "asl" / "build-job.asl.json"


def terraform_local(module: str, name: str) -> Any:
    """A `locals` value of a module, as python-hcl2 reads it (an expression stays a "${...}" string)."""
    for path in sorted((REPO_ROOT / "modules" / module).glob("*.tf")):
        for block in parsed(path).get("locals", []):
            if name in block:
                return block[name]
    raise KeyError(f"modules/{module} has no local {name}")


def root_variable(name: str) -> dict[str, Any]:
    for block in parsed(REPO_ROOT / "variables.tf")["variable"]:
        if name in block:
            return block[name]
    raise KeyError(f"variables.tf has no variable {name}")


def test_console_hosts_match_the_action_types_links() -> None:
    """modules/action_type links the action's pages to the console of the partition; the build log link too."""
    expression = str(terraform_local("action_type", "console_host"))
    hosts = dict(re.findall(r'"([\w-]+)"\s*=\s*"([\w.-]+)"', expression))
    default = re.search(r',\s*"([\w.-]+)"\)\}$', expression)
    assert hosts == messages.CONSOLE_HOSTS
    assert default and default[1] == messages.DEFAULT_CONSOLE_HOST


def test_the_reapers_metric_is_the_one_its_alarm_watches_and_its_policy_allows() -> None:
    """reap puts ReapedInstances in its namespace; the alarm watches it there, the IAM condition (iam.tf) allows
    PutMetricData in local.metric_namespace only."""
    assert terraform_local("orchestrator", "metric_namespace") == reap.METRIC_NAMESPACE
    alarms = str(terraform_local("orchestrator", "alarms"))
    reaped = re.search(r"reaped_instances = \{[^{}]*namespace = local\.metric_namespace, metric = \"(\w+)\"", alarms)
    assert reaped and reaped[1] == reap.METRIC_NAME


def test_tag_keys_in_iam_conditions_and_the_launch_template_are_the_lambdas() -> None:
    assert terraform_local("orchestrator", "stack_tag_key") == tags.STACK
    # The only keys the reaper's policy lets it add or remove: its marks.
    assert terraform_local("orchestrator", "reaper_tag_keys") == [tags.ORPHANED_AT, tags.ORPHAN_REASON]
    assert terraform_local("builder", "instance_tags") == f'${{merge(var.tags, {{"{tags.STACK}" = var.name_prefix}})}}'


def test_the_users_tags_cannot_take_a_key_the_module_sets() -> None:
    """variables.tf refuses user tags in the module's prefix: every key the Lambdas set or read, but Name, has it."""
    [validation] = root_variable("tags")["validation"]
    reserved = re.findall(r'!startswith\(key, "([^"]+)"\)', validation["condition"])
    assert len(reserved) == 1
    module_keys = {value for name, value in vars(tags).items() if name.isupper() and value != tags.NAME}
    assert module_keys and all(key.startswith(reserved[0]) for key in module_keys)


def test_the_overdue_description_states_the_builders_shutdown_grace() -> None:
    """A builder shuts itself down SHUTDOWN_GRACE_MINUTES after its timeout and registration window (acquire); the
    orphan_grace_minutes description (and the README's inputs table made from it) tells users that figure."""
    description = root_variable("orphan_grace_minutes")["description"]
    assert f"SSM registration window and {acquire.SHUTDOWN_GRACE_MINUTES} minutes)" in description


def test_the_reaper_waits_out_a_poller_that_may_still_start_the_job() -> None:
    """A job without an execution is failed only MIN_JOB_AGE_SECONDS after its claim: longer than a poll invocation
    may run (its Lambda timeout), so a poller that claimed the job has started its execution or died by then."""
    poll_timeout = terraform_local("orchestrator", "functions")["poll"]["timeout"]
    assert poll_timeout < reap.MIN_JOB_AGE_SECONDS


def test_every_function_terraform_deploys_is_a_handler_module_and_every_handler_is_deployed() -> None:
    """Each function's handler is ec2_action.handlers.<key>.handler (modules/orchestrator): a key without its module
    fails only at invocation, a module without its key is never deployed."""
    functions = terraform_local("orchestrator", "functions")
    modules = {path.stem for path in HANDLERS_DIR.glob("*.py") if path.stem != "__init__"}
    assert set(functions) == modules
    assert all(callable(importlib.import_module(f"ec2_action.handlers.{key}").handler) for key in functions)


def test_wait_online_may_read_and_write_the_registration_items_and_no_job() -> None:
    """registration.py keeps the learned registration times in the jobs table, keyed registration#<ami>#<type>;
    wait_online's policy (iam.tf) allows GetItem and PutItem only of keys its LeadingKeys patterns match."""
    statements = terraform_local("orchestrator", "function_statements")["wait_online"]
    [learn] = [statement for statement in statements if statement["Sid"] == "LearnRegistrationTimes"]
    assert learn["Action"] == ["dynamodb:GetItem", "dynamodb:PutItem"]
    patterns = learn["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert not any(set("[]") & set(pattern) for pattern in patterns)  # fnmatch reads [...], IAM's StringLike does not

    def allowed(key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)

    assert allowed(registration.key("ami-0123456789abcdef0", "t3.large"))
    assert not allowed("0b6f1f5e-0c4e-4c39-9a3a-1d2e3f4a5b6c")  # a CodePipeline job id: a job's item


def test_every_error_the_state_machine_names_is_one_the_functions_raise() -> None:
    """A Retry or Catch matches a Lambda error by its type, the exception's class name (errors.py): a renamed class
    would silently fall through to the generic retry. The queue fails a waiting job's token with the same name."""
    named = {
        error
        for state in json.loads(re.sub(r"\$\{\w+\}", "1", STATE_MACHINE.read_text()))["States"].values()
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]
        for error in rule["ErrorEquals"]
        if not error.startswith("States.")
    }
    raised = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)}
    assert named and named <= raised, named - raised
    assert errors.CapacityTimeout.__name__ in named
    assert errors.CapacityTimeout.__name__ == queue.CAPACITY_TIMEOUT
    assert errors.StackDestroyed.__name__ == drain.STACK_DESTROYED and drain.STACK_DESTROYED in named


def test_the_keeper_reads_the_lifecycle_where_terraforms_invocation_puts_it() -> None:
    """aws_lambda_invocation (lifecycle_scope CRUD) adds {"action": "create"|"update"|"delete"} under its
    terraform_key; the keeper drains the stack on "delete" (drain.py)."""
    [invocation] = [
        block["aws_lambda_invocation"]["keeper"]
        for block in parsed(REPO_ROOT / "modules" / "orchestrator" / "keeper_invocation.tf")["resource"]
    ]
    assert (invocation["lifecycle_scope"], invocation["terraform_key"]) == ("CRUD", drain.TERRAFORM_KEY)
