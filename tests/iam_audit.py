"""Least-privilege rules for the IAM policies the module creates, as small checks over normalised statements.

A policy document is turned into `Statement`s (Action/NotAction, Resource/NotResource always lists, condition keys
lower-cased); each rule takes one allowing statement and returns the problems it finds, as readable sentences.
Only Allow statements grant anything, so Deny statements are not audited. IAM matches actions case-insensitively,
with `*` and `?` wildcards: `covers()` does the same, so `ec2:*` or `ec2:Terminate*` count as TerminateInstances.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# EC2 calls whose names start with these only read; every other EC2 action changes something.
EC2_READ_PREFIXES = ("describe", "get", "list", "search")
# Condition keys that tie an EC2 call to this stack's tagged resources, or to tagging at launch (ec2:CreateAction).
TAG_CONDITION_PREFIXES = ("aws:requesttag/", "aws:resourcetag/", "ec2:resourcetag/", "ec2:createaction")
# RunInstances only reads an image: a wildcard over images launches nothing that is not otherwise allowed.
EC2_TYPES_ONLY_READ_AT_LAUNCH = ("image",)
# What a launch creates beside its instance and cannot tag: a spot instance's one-time request, an instant fleet's
# record of the request. A wildcard over them, for the launch calls only, launches nothing the instance's own
# (tag-conditioned) statement refuses.
EC2_LAUNCH_ACTIONS = ("ec2:runinstances", "ec2:createfleet")
EC2_TYPES_CREATED_BESIDE_AN_INSTANCE = ("spot-instances-request", "fleet")
# The CodePipeline calls of a job worker; anything else (pipelines, action types, approvals) is management.
CODEPIPELINE_JOB_ACTIONS = frozenset(
    f"codepipeline:{name}".lower()
    for name in (
        "PollForJobs",
        "AcknowledgeJob",
        "GetJobDetails",
        "PutJobSuccessResult",
        "PutJobFailureResult",
    )
)
POLL_FOR_JOBS = "codepipeline:pollforjobs"
PASS_ROLE = "iam:passrole"
CREATE_SERVICE_LINKED_ROLE = "iam:createservicelinkedrole"
# EC2 calls that change a running or stopped instance's state: each only on instances tagged with the stack.
INSTANCE_STATE_ACTIONS = (
    "ec2:TerminateInstances",
    "ec2:StartInstances",
    "ec2:StopInstances",
    "ec2:RebootInstances",
)
STACK_TAG_CONDITION = "ec2:ResourceTag/ec2-action:stack"


@dataclass(frozen=True)
class Statement:
    """One policy statement, normalised: lists everywhere, actions and condition keys lower-cased."""

    origin: str
    sid: str
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]]

    @property
    def name(self) -> str:
        return f"{self.origin} [{self.sid or 'no Sid'}]"

    @property
    def condition_keys(self) -> frozenset[str]:
        return frozenset(key.lower() for values in self.condition.values() for key in values)

    def condition_values(self, operator: str, key: str) -> list[str]:
        """The values a condition operator (e.g. StringEquals) requires of key (case-insensitive key match)."""
        values = {k.lower(): v for k, v in self.condition.get(operator, {}).items()}
        return as_list(values.get(key.lower()))


def as_list(value: Any) -> list[Any]:
    """IAM allows a single value where a list is meant: make it a list (None: empty)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def normalise(document: Mapping[str, Any] | str, origin: str) -> list[Statement]:
    """The statements of a policy document (a dict, or its JSON text) in normalised form."""
    if isinstance(document, str):
        document = json.loads(document)
    return [
        Statement(
            origin=origin,
            sid=raw.get("Sid", ""),
            effect=raw["Effect"],
            actions=tuple(action.lower() for action in as_list(raw.get("Action"))),
            not_actions=tuple(action.lower() for action in as_list(raw.get("NotAction"))),
            resources=tuple(as_list(raw.get("Resource"))),
            not_resources=tuple(as_list(raw.get("NotResource"))),
            condition={operator: dict(values) for operator, values in (raw.get("Condition") or {}).items()},
        )
        for raw in as_list(document["Statement"])
    ]


def covers(statement: Statement, action: str) -> bool:
    """Whether the statement's Action (or NotAction) applies to a concrete action such as ec2:RunInstances."""
    action = action.lower()
    if statement.not_actions:
        return not any(fnmatchcase(action, pattern) for pattern in statement.not_actions)
    return any(fnmatchcase(action, pattern) for pattern in statement.actions)


def service_patterns(statement: Statement, service: str) -> list[str]:
    """The statement's action patterns that can match actions of service (e.g. `ec2:*`, `*`, `ec2:Run*`)."""
    return [p for p in statement.actions if p == "*" or fnmatchcase(f"{service}:", p.split(":")[0] + ":")]


def is_mutating_ec2_pattern(pattern: str) -> bool:
    """An EC2 action pattern that can match an action changing something (not Describe*/Get*/List*/Search*)."""
    verb = pattern.split(":", 1)[1] if ":" in pattern else pattern
    return not any(verb.startswith(prefix) and "*" not in verb[: len(prefix)] for prefix in EC2_READ_PREFIXES)


def has_tag_condition(statement: Statement) -> bool:
    return any(key.startswith(TAG_CONDITION_PREFIXES) for key in statement.condition_keys)


def ec2_resource_type(arn: str) -> str:
    """instance for arn:aws:ec2:r:a:instance/i-1; empty for `*` or an ARN with no resource type."""
    parts = arn.split(":", 5)
    return parts[5].split("/", 1)[0] if len(parts) == 6 and "/" in parts[5] else ""


def is_scoped_ec2_resource(arn: str) -> bool:
    """A resource narrower than "everything": named ids, or a wildcard over images (only read at launch)."""
    kind = ec2_resource_type(arn)
    if not kind or "*" in kind:
        return False
    return "*" not in arn.split("/", 1)[1] or kind in EC2_TYPES_ONLY_READ_AT_LAUNCH


def bucket_of(arn: str) -> str | None:
    """The bucket an S3 ARN names (arn:aws:s3:::bucket or arn:aws:s3:::bucket/key), None for anything else."""
    prefix, _, rest = arn.partition(":::")
    return rest.split("/", 1)[0] if prefix.endswith(":s3") and rest else None


# --- Rules: each takes one Allow statement and returns its problems ------------------------------------------------


def no_wildcard_grants(statement: Statement) -> list[str]:
    problems = []
    if "*" in statement.actions:
        problems.append(f'{statement.name}: Action "*" grants every action')
    if statement.not_actions:
        problems.append(f"{statement.name}: Allow with NotAction grants every action but {statement.not_actions}")
    if statement.not_resources:
        problems.append(f"{statement.name}: Allow with NotResource grants every resource but {statement.not_resources}")
    return problems


def ec2_mutations_are_scoped(statement: Statement) -> list[str]:
    mutating = [p for p in service_patterns(statement, "ec2") if is_mutating_ec2_pattern(p)]
    if not mutating or has_tag_condition(statement):
        return []
    only_launches = all(pattern in EC2_LAUNCH_ACTIONS for pattern in mutating)
    unscoped = [
        arn
        for arn in statement.resources
        if not is_scoped_ec2_resource(arn)
        and not (only_launches and ec2_resource_type(arn) in EC2_TYPES_CREATED_BESIDE_AN_INSTANCE)
    ]
    if not unscoped:
        return []
    return [f"{statement.name}: {mutating} on {unscoped} without a tag condition"]


def pass_role_only_builder_to_ec2(builder_role_arn: str) -> Callable[[Statement], list[str]]:
    def rule(statement: Statement) -> list[str]:
        if not covers(statement, PASS_ROLE):
            return []
        problems = []
        if list(statement.resources) != [builder_role_arn]:
            problems.append(f"{statement.name}: iam:PassRole on {list(statement.resources)}, not the builder role")
        if statement.condition_values("StringEquals", "iam:PassedToService") != ["ec2.amazonaws.com"]:
            problems.append(f"{statement.name}: iam:PassRole is not limited to ec2.amazonaws.com")
        return problems

    return rule


def service_linked_roles_only_for(services: Iterable[str]) -> Callable[[Statement], list[str]]:
    """iam:CreateServiceLinkedRole only with an iam:AWSServiceName condition naming some of these services."""
    allowed = set(services)

    def rule(statement: Statement) -> list[str]:
        if not covers(statement, CREATE_SERVICE_LINKED_ROLE):
            return []
        named = set(statement.condition_values("StringEquals", "iam:AWSServiceName"))
        if not named or not named <= allowed:
            for_whom = sorted(named) or "any service"
            return [f"{statement.name}: iam:CreateServiceLinkedRole for {for_whom}, not only {sorted(allowed)}"]
        return []

    return rule


def codepipeline_job_calls_only(action_type_arns: Iterable[str]) -> Callable[[Statement], list[str]]:
    allowed_types = set(action_type_arns)

    def rule(statement: Statement) -> list[str]:
        patterns = service_patterns(statement, "codepipeline")
        problems = [
            f"{statement.name}: {pattern} is not one of the job calls"
            for pattern in patterns
            if pattern not in CODEPIPELINE_JOB_ACTIONS
        ]
        if POLL_FOR_JOBS in patterns and not set(statement.resources) <= allowed_types:
            problems.append(f"{statement.name}: PollForJobs on {list(statement.resources)}, not our action types")
        return problems

    return rule


def s3_only_on_buckets(buckets: Iterable[str]) -> Callable[[Statement], list[str]]:
    allowed = set(buckets)

    def rule(statement: Statement) -> list[str]:
        patterns = service_patterns(statement, "s3")
        if not patterns:
            return []
        problems = [f"{statement.name}: wildcard S3 action {p}" for p in patterns if "*" in p.split(":")[-1]]
        outside = [arn for arn in statement.resources if bucket_of(arn) not in allowed]
        if outside:
            problems.append(f"{statement.name}: S3 actions on {outside}, beyond the buckets {sorted(allowed)}")
        return problems

    return rule


def instance_state_changes_only_on_stack(stack: str) -> Callable[[Statement], list[str]]:
    """Terminating, starting, stopping or rebooting an instance: only instances (no other resource type) that carry
    this stack's ec2-action:stack tag. Stricter than ec2_mutations_are_scoped, which accepts any tag condition."""

    def rule(statement: Statement) -> list[str]:
        covered = [action for action in INSTANCE_STATE_ACTIONS if covers(statement, action)]
        if not covered:
            return []
        problems = []
        if statement.condition_values("StringEquals", STACK_TAG_CONDITION) != [stack]:
            problems.append(f"{statement.name}: {covered} without the condition {STACK_TAG_CONDITION} = {stack}")
        others = [arn for arn in statement.resources if ec2_resource_type(arn) != "instance"]
        if others:
            problems.append(f"{statement.name}: {covered} on {others}, not only instances")
        return problems

    return rule


def dynamodb_only_on_tables(table_arns: Iterable[str]) -> Callable[[Statement], list[str]]:
    """DynamoDB calls only on the stack's tables (no index, stream or other table), and no wildcard calls."""
    allowed = set(table_arns)

    def rule(statement: Statement) -> list[str]:
        patterns = service_patterns(statement, "dynamodb")
        if not patterns:
            return []
        problems = [f"{statement.name}: wildcard DynamoDB action {p}" for p in patterns if "*" in p.split(":")[-1]]
        outside = [arn for arn in statement.resources if arn not in allowed]
        if outside:
            problems.append(f"{statement.name}: DynamoDB actions on {outside}, beyond the tables {sorted(allowed)}")
        return problems

    return rule


def who_may(policies: Mapping[str, Iterable[Statement]], action: str) -> set[str]:
    """The roles (keys of policies) whose Allow statements cover a concrete action, e.g. who may ec2:StopInstances."""
    return {
        role
        for role, statements in policies.items()
        if any(statement.effect == "Allow" and covers(statement, action) for statement in statements)
    }


def audit(statements: Iterable[Statement], rules: Iterable[Callable[[Statement], list[str]]]) -> list[str]:
    """Every problem every rule finds in the Allow statements."""
    rules = list(rules)
    return [
        problem
        for statement in statements
        if statement.effect == "Allow"
        for rule in rules
        for problem in rule(statement)
    ]
