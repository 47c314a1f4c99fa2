"""The IAM audit's rules themselves: a least-privilege policy passes, deliberately bad ones fail with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from iam_audit import (
    audit,
    codepipeline_job_calls_only,
    dynamodb_only_on_tables,
    ec2_mutations_are_scoped,
    instance_state_changes_only_on_stack,
    is_mutating_ec2_pattern,
    no_wildcard_grants,
    normalise,
    pass_role_only_builder_to_ec2,
    s3_only_on_buckets,
    service_linked_roles_only_for,
    who_may,
)

EC2 = "arn:aws:ec2:us-east-1:123456789012"
BUILDER = "arn:aws:iam::123456789012:role/stack-builder"
SERVICE_ROLES = "arn:aws:iam::123456789012:role/aws-service-role"
ACTION_TYPE = "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/EC2-Linux/1"
TABLES = [f"arn:aws:dynamodb:us-east-1:123456789012:table/stack-{name}" for name in ("jobs", "pool")]
STACK_TAG = {"StringEquals": {"ec2:ResourceTag/ec2-action:stack": "stack"}}
RULES = [
    no_wildcard_grants,
    ec2_mutations_are_scoped,
    instance_state_changes_only_on_stack("stack"),
    pass_role_only_builder_to_ec2(BUILDER),
    codepipeline_job_calls_only([ACTION_TYPE]),
    s3_only_on_buckets(["artifacts"]),
    dynamodb_only_on_tables(TABLES),
    service_linked_roles_only_for(["spot.amazonaws.com", "ec2fleet.amazonaws.com"]),
]


def problems(*statements: dict[str, Any]) -> list[str]:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in statements]}
    return audit(normalise(document, "test-role/policy"), RULES)


def test_a_least_privilege_policy_passes() -> None:
    assert (
        problems(
            {
                "Action": "ec2:RunInstances",  # a single string, not a list
                "Resource": f"{EC2}:instance/*",
                "Condition": {"StringEquals": {"aws:RequestTag/ec2-action:stack": "stack"}},
            },
            {"Action": ["ec2:RunInstances"], "Resource": [f"{EC2}:subnet/subnet-1", "arn:aws:ec2:us-east-1::image/*"]},
            # What a (fleet) launch creates beside its instance, untaggable: the launch calls only.
            {
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": [f"{EC2}:spot-instances-request/*", f"{EC2}:fleet/*"],
            },
            {
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": f"{SERVICE_ROLES}/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
                "Condition": {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}},
            },
            {"Action": ["ec2:DescribeInstances", "ec2:Describe*"], "Resource": "*"},
            {
                "Action": "iam:PassRole",
                "Resource": BUILDER,
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            },
            {"Action": "codepipeline:PollForJobs", "Resource": ACTION_TYPE},
            {"Action": ["codepipeline:AcknowledgeJob", "codepipeline:PutJobSuccessResult"], "Resource": "*"},
            {"Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::artifacts/*"},
            {"Action": "ssm:GetCommandInvocation", "Resource": "*"},
            {
                "Action": ["ec2:StartInstances", "ec2:StopInstances"],
                "Resource": f"{EC2}:instance/*",
                "Condition": STACK_TAG,
            },
            {"Action": ["dynamodb:Query", "dynamodb:ConditionCheckItem"], "Resource": TABLES},
        )
        == []
    )


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ({"Action": "*", "Resource": "*"}, 'Action "*"'),
        ({"NotAction": "iam:*", "Resource": "*"}, "NotAction"),
        ({"Action": "ec2:TerminateInstances", "Resource": f"{EC2}:instance/*"}, "without a tag condition"),
        ({"Action": "EC2:terminate*", "Resource": "*"}, "without a tag condition"),
        ({"Action": "ec2:*", "Resource": f"{EC2}:*"}, "without a tag condition"),
        ({"Action": "iam:PassRole", "Resource": "*"}, "not the builder role"),
        ({"Action": "iam:PassRole", "Resource": BUILDER}, "not limited to ec2.amazonaws.com"),
        ({"Action": "codepipeline:*", "Resource": "*"}, "not one of the job calls"),
        ({"Action": "codepipeline:UpdatePipeline", "Resource": "*"}, "not one of the job calls"),
        ({"Action": "codepipeline:PollForJobs", "Resource": "*"}, "not our action types"),
        ({"Action": "s3:*", "Resource": "arn:aws:s3:::artifacts/*"}, "wildcard S3 action"),
        ({"Action": "s3:GetObject", "Resource": "*"}, "beyond the buckets"),
        ({"Action": "s3:GetObject", "Resource": "arn:aws:s3:::someone-elses/*"}, "beyond the buckets"),
        # Any tag condition scopes a mutation, but starting, stopping or terminating needs this stack's tag.
        (
            {
                "Action": "ec2:StopInstances",
                "Resource": f"{EC2}:instance/*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "stack"}},
            },
            "without the condition ec2:ResourceTag/ec2-action:stack = stack",
        ),
        (
            {
                "Action": "ec2:StartInstances",
                "Resource": f"{EC2}:instance/*",
                "Condition": {"StringEquals": {"ec2:ResourceTag/ec2-action:stack": "other-stack"}},
            },
            "without the condition",
        ),
        ({"Action": "ec2:*Instances", "Resource": f"{EC2}:*", "Condition": STACK_TAG}, "not only instances"),
        # Spot requests and fleets are accepted untagged for the launch calls only.
        ({"Action": "ec2:CancelSpotInstanceRequests", "Resource": f"{EC2}:spot-instances-request/*"}, "tag condition"),
        ({"Action": ["ec2:CreateFleet", "ec2:DeleteFleets"], "Resource": f"{EC2}:fleet/*"}, "tag condition"),
        ({"Action": "ec2:CreateFleet", "Resource": f"{EC2}:instance/*"}, "without a tag condition"),
        ({"Action": "iam:CreateServiceLinkedRole", "Resource": "*"}, "for any service"),
        (
            {
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": ["spot.amazonaws.com", "rds.amazonaws.com"]}},
            },
            "not only",
        ),
        ({"Action": "dynamodb:*", "Resource": TABLES}, "wildcard DynamoDB action"),
        ({"Action": "dynamodb:Scan", "Resource": "*"}, "beyond the tables"),
        ({"Action": "dynamodb:Query", "Resource": [f"{TABLES[1]}/index/by-state"]}, "beyond the tables"),
    ],
)
def test_a_bad_statement_fails_with_its_reason(statement: dict[str, Any], reason: str) -> None:
    found = problems(statement)
    assert any(reason in problem for problem in found), found


def test_deny_statements_grant_nothing_and_are_not_audited() -> None:
    document = {"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}
    assert audit(normalise(document, "role/policy"), RULES) == []


@pytest.mark.parametrize(
    ("pattern", "mutating"),
    [("ec2:describeinstances", False), ("ec2:describe*", False), ("ec2:d*", True), ("ec2:*", True)],
)
def test_ec2_read_and_write_patterns(pattern: str, mutating: bool) -> None:
    assert is_mutating_ec2_pattern(pattern) is mutating


def test_who_may_an_action_reads_wildcards_and_ignores_denials() -> None:
    policies = {
        "release": normalise({"Statement": {"Effect": "Allow", "Action": "ec2:Stop*", "Resource": "*"}}, "release/p"),
        "keeper": normalise(
            {"Statement": [{"Effect": "Allow", "Action": ["EC2:StopInstances"], "Resource": "*"}]}, "keeper/p"
        ),
        "acquire": normalise({"Statement": {"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}}, "acquire/p"),
        "poll": normalise(
            {"Statement": {"Effect": "Allow", "Action": "ec2:StartInstances", "Resource": "*"}}, "poll/p"
        ),
    }
    assert who_may(policies, "ec2:StopInstances") == {"release", "keeper"}
    assert who_may(policies, "ec2:StartInstances") == {"poll"}
    assert who_may(policies, "iam:PassRole") == set()
