"""The IAM audit's rules themselves: a least-privilege policy passes, deliberately bad ones fail with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from iam_audit import (
    audit,
    codepipeline_job_calls_only,
    ec2_mutations_are_scoped,
    is_mutating_ec2_pattern,
    no_wildcard_grants,
    normalise,
    pass_role_only_builder_to_ec2,
    s3_only_on_buckets,
)

EC2 = "arn:aws:ec2:us-east-1:123456789012"
BUILDER = "arn:aws:iam::123456789012:role/stack-builder"
ACTION_TYPE = "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Build/EC2-Linux/1"
RULES = [
    no_wildcard_grants,
    ec2_mutations_are_scoped,
    pass_role_only_builder_to_ec2(BUILDER),
    codepipeline_job_calls_only([ACTION_TYPE]),
    s3_only_on_buckets(["artifacts"]),
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
