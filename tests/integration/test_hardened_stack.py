"""template.yaml deployed with its hardening options on: the stack creates the VPC endpoints, the
session preferences and their log group, and holds attaching to the deployer's roles.

This deploys a second stack into an emulator of its own: the options change account-wide
settings (the session preferences document) that the shared `local_aws` must not see.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.integration

OPTIONS = {
    "NamePrefix": "hard",
    "EnableSessionLogging": "true",
    "ExecutionRolePath": "/ml/",
    "ExecutionRoleTagKey": "ssm-guard",
    "ExecutionRoleTagValue": "allowed",
}


def document(raw: Any) -> Any:
    """A policy or SSM document as the emulator returns it. NOTE: moto 5.2.5 keeps a document
    that CloudFormation built from YAML as Python's repr of it, not as JSON (AWS returns JSON)."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return ast.literal_eval(raw)


@pytest.fixture(scope="module")
def hardened() -> Iterator[dict[str, Any]]:
    from ssm_guard.local.api import LocalAws

    with LocalAws(delay=0.2, isolated=True) as aws:
        ec2 = aws.client("ec2", max_attempts=2)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"]
            for i in range(2)
        ]
        group = ec2.create_security_group(
            GroupName="ssm-endpoints", Description="HTTPS from the endpoints", VpcId=vpc
        )["GroupId"]
        network = {"VpcId": vpc, "SubnetIds": ",".join(subnets), "SecurityGroupId": group}
        aws.deploy_stack(stack_name="hardened", parameter_overrides={**OPTIONS, **network})
        listed = aws.client("cloudformation", max_attempts=2).list_stack_resources(
            StackName="hardened"
        )["StackResourceSummaries"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}
        yield {"aws": aws, "vpc": vpc, "subnets": subnets, "group": group, "physical": physical}


def test_interface_endpoints_for_ssm_are_created_in_the_vpc(hardened) -> None:
    ec2 = hardened["aws"].client("ec2", max_attempts=2)
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    assert sorted(e["ServiceName"].rsplit(".", 1)[1] for e in endpoints) == [
        "ec2messages",
        "ssm",
        "ssmmessages",
    ]
    for endpoint in endpoints:
        assert endpoint["VpcId"] == hardened["vpc"]
        assert endpoint["VpcEndpointType"] == "Interface"
        assert sorted(endpoint["SubnetIds"]) == sorted(hardened["subnets"])


def test_session_preferences_log_every_session_to_the_stack_log_group(hardened) -> None:
    aws = hardened["aws"]
    preferences = aws.client("ssm", max_attempts=2).get_document(Name="SSM-SessionManagerRunShell")
    assert preferences["DocumentType"] == "Session"
    inputs = document(preferences["Content"])["inputs"]
    assert inputs["cloudWatchLogGroupName"] == "/hard/ssm-sessions"
    assert inputs["cloudWatchEncryptionEnabled"] is False
    groups = aws.client("logs", max_attempts=2).describe_log_groups(
        logGroupNamePrefix="/hard/ssm-sessions"
    )["logGroups"]
    assert [g.get("retentionInDays") for g in groups] == [365]


def test_endpoint_roles_may_write_to_the_session_log_group(hardened) -> None:
    iam = hardened["aws"].client("iam", max_attempts=2)
    arn = hardened["physical"]["SessionPolicy"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    raw = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    sids = {s.get("Sid"): s for s in document(raw)["Statement"]}
    assert "ssm-sessions" in json.dumps(sids["WriteSessionLogs"]["Resource"])


def test_attaching_is_held_to_the_role_path_and_tag(hardened) -> None:
    iam = hardened["aws"].client("iam", max_attempts=2)
    role = hardened["physical"]["EnforcerFunctionRole"]
    documents = [
        document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    ]
    statements = [
        s for d in documents for s in d["Statement"] if "iam:AttachRolePolicy" in s["Action"]
    ]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert [s["Resource"] for s in allow] == ["arn:aws:iam::123456789012:role/ml/*"]
    assert [s["Condition"] for s in deny] == [
        {"StringNotEquals": {"iam:ResourceTag/ssm-guard": "allowed"}}
    ]


def test_with_the_defaults_none_of_the_options_exist(local_aws, local_client) -> None:
    # GIVEN the shared stack, deployed with every parameter at its default
    resources = local_client("cloudformation").list_stack_resources(
        StackName=local_aws.stack["stack_name"]
    )["StackResourceSummaries"]
    # THEN no VPC endpoint, no session preferences, no tag restriction was created
    created = {r["LogicalResourceId"] for r in resources}
    optional = {
        "SsmVpcEndpoint",
        "SsmMessagesVpcEndpoint",
        "Ec2MessagesVpcEndpoint",
        "SessionLogGroup",
        "SessionManagerPreferences",
        "AttachOnlyToTaggedRoles",
    }
    assert created
    assert not created & optional
