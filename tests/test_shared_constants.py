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

from ec2_action import config, drain, errors, messages, queue, registration, tags
from ec2_action.handlers import acquire, interruption, reap
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


def test_tag_keys_in_iam_conditions_and_the_launch_template_are_the_lambdas() -> None:
    assert terraform_local("orchestrator", "stack_tag_key") == tags.STACK
    # The only keys the reaper's policy lets it add or remove: its marks.
    assert terraform_local("orchestrator", "reaper_tag_keys") == [tags.ORPHANED_AT, tags.ORPHAN_REASON]
    assert terraform_local("builder", "instance_tags") == f'${{merge(var.tags, {{"{tags.STACK}" = var.name_prefix}})}}'


def test_the_users_tags_cannot_take_a_key_the_module_sets() -> None:
    """variables.tf refuses user tags in the module's prefix: every key the Lambdas set or read, but Name, has it."""
    [validation] = [v for v in root_variable("tags")["validation"] if "!startswith(key" in v["condition"]]
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


def test_the_module_sets_only_tag_keys_instance_metadata_can_show() -> None:
    """Builders read their tags from the instance metadata, where EC2 refuses some keys at launch: the user's tags are
    held to the same rule as every key the module sets (variables.tf)."""
    [validation] = [v for v in root_variable("tags")["validation"] if "can(regex(" in v["condition"]]
    [pattern] = re.findall(r'can\(regex\("([^"]+)", key\)\)', validation["condition"])
    module_keys = {value for name, value in vars(tags).items() if name.isupper()}
    assert module_keys and all(re.fullmatch(pattern, key) for key in module_keys), module_keys
    assert not re.fullmatch(pattern, "Cost Center") and not re.fullmatch(pattern, "team/owner")


def validation_lists(conditions: list[str], subject: str) -> list[list[str]]:
    """The string lists a validation's `contains([...], <subject>)` checks, in the order they appear."""
    return [
        re.findall(r'"([^"]+)"', found)
        for condition in conditions
        for found in re.findall(r"contains\(\[([^\]]*)\],\s*" + re.escape(subject) + r"\)", condition)
    ]


def test_the_purchase_options_terraform_accepts_are_the_lambdas() -> None:
    """variables.tf and modules/lambda_config refuse any purchase option the Lambdas do not know (config.py)."""
    root = [validation["condition"] for validation in root_variable("actions")["validation"]]
    renderer = [
        validation["condition"]
        for block in parsed(REPO_ROOT / "modules" / "lambda_config" / "variables.tf")["variable"]
        if "actions" in block
        for validation in block["actions"]["validation"]
    ]
    assert validation_lists(root, "action.purchase_option") == [list(config.PURCHASE_OPTIONS)]
    assert validation_lists(renderer, "action.purchase_option") == [list(config.PURCHASE_OPTIONS)]


def test_the_self_shutdown_scripts_read_the_deadline_tag_the_launch_sets() -> None:
    """The launch tags an ephemeral builder with its deadline (tags.DEADLINE); the launch templates' user data reads
    that tag from the instance metadata and shuts the builder down then."""
    user_data = REPO_ROOT / "modules" / "builder" / "user_data"
    linux, windows = (user_data / "linux.sh").read_text(), (user_data / "windows.ps1").read_text()
    assert f"readonly DEADLINE_URL=$IMDS/meta-data/tags/instance/{tags.DEADLINE}\n" in linux
    assert f'$DeadlineUri = "$Imds/meta-data/tags/instance/{tags.DEADLINE}"\n' in windows


def test_the_interruption_rules_match_the_events_the_handler_acts_on() -> None:
    """modules/orchestrator routes EC2's events to the interruption function by detail-type (events.tf); the handler
    tells them apart by the same names, and acts on the instance states it treats as ending."""
    rules = terraform_local("orchestrator", "instance_event_rules")
    detail_types = {name for rule in rules.values() for name in rule["pattern"]["detail-type"]}
    assert detail_types == {interruption.WARNING, interruption.STATE_CHANGE, interruption.REBALANCE}
    [terminating] = [rule for rule in rules.values() if rule["pattern"]["detail-type"] == [interruption.STATE_CHANGE]]
    assert set(terminating["pattern"]["detail"]["state"]) == set(errors.ENDING_STATES)
