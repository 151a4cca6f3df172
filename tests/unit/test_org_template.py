"""The template's organization-wide deployment: the same template as the central stack or as a
member stack, the central bus open to the organization only, members forwarding what the
central rules match, and a member role holding exactly what the functions call there."""

from __future__ import annotations

from typing import Any

import pytest
from _code_paths import CodeIndex, Operation
from _iam_template import (
    Statement,
    _statements,
    cloudformation,
    functions,
    render,
    sam_template,
)

from ssm_guard.accounts import MEMBER_SERVICES
from ssm_guard.permissions import (
    FUNCTION_EXTRA_OPERATIONS,
    FUNCTION_UNCALLED_OPERATIONS,
    LIBRARY_OPERATIONS,
    OPERATIONS,
    WILDCARD_RESOURCE_ACTIONS,
    allowed_actions,
    required_actions,
)

pytestmark = pytest.mark.unit

CENTRAL_CREDENTIALS_ONLY = frozenset({("sts", "AssumeRole")})
"""Operations on a member service that accounts.py makes with the central function's own
credentials, never through the member role."""


def resources() -> dict[str, Any]:
    found: dict[str, Any] = sam_template()["Resources"]
    return found


def member_operations() -> set[Operation]:
    """What the central functions' code calls through a member guard, from the handlers down."""
    extra = {code.module: code.app_file for code in functions().values()}
    index = CodeIndex(frozenset(service for service, _ in OPERATIONS), extra)
    found: set[Operation] = set()
    for code in functions().values():
        reached = index.operations_from(
            [code.module, f"{code.module}.{code.handler}"], dict(LIBRARY_OPERATIONS)
        )
        operations = set(reached) | set(FUNCTION_EXTRA_OPERATIONS.get(code.logical_id, ()))
        operations -= set(FUNCTION_UNCALLED_OPERATIONS.get(code.logical_id, {}))
        found |= {op for op in operations if op[0] in MEMBER_SERVICES}
    return found - CENTRAL_CREDENTIALS_ONLY


def member_role_statements() -> list[Statement]:
    role = cloudformation()["Resources"]["MemberRole"]["Properties"]
    return [
        statement
        for policy in role["Policies"]
        for statement in _statements(policy["PolicyDocument"], "MemberRole", False)
    ]


def test_member_role_grants_exactly_what_the_functions_call_in_a_member_account() -> None:
    # GIVEN every operation the central functions make through a member guard
    operations = member_operations()
    assert ("sagemaker", "UpdateEndpoint") in operations
    assert ("ssm", "PutParameter") in operations
    granted = {a.lower() for s in member_role_statements() for a in s.actions}
    # THEN the member role allows each of them...
    missing = sorted(a for a in required_actions(operations) if a.lower() not in granted)
    assert not missing, f"MemberRole in template.yaml misses {missing}"
    # ...and nothing the functions never call there
    allowed = {a.lower() for a in allowed_actions(operations)}
    extra = sorted(a for a in granted if a not in allowed)
    assert not extra, f"MemberRole in template.yaml allows {extra}, which no function calls"


def test_the_member_role_scopes_like_the_functions_with_any_region() -> None:
    for statement in member_role_statements():
        for resource in statement.resources:
            assert resource == "*" or "${AWS::AccountId}" in resource or ":kms:*:*:" in resource, (
                f"{statement.source}: {resource} is not confined to the member account"
            )
            if resource == "*":
                wide = set(statement.actions) - WILDCARD_RESOURCE_ACTIONS
                assert not wide, f"{statement.source}: {sorted(wide)} on every resource"
        if "iam:AttachRolePolicy" in statement.actions:
            assert statement.resources == (
                "arn:${AWS::Partition}:iam::${AWS::AccountId}:role${ExecutionRolePath}*",
            )
            policy = statement.condition["ArnLike"]["iam:PolicyARN"]
            assert policy.endswith(":policy/${NamePrefix}-sagemaker-ssm-session-*")


def test_only_roles_under_the_central_path_may_assume_the_member_role() -> None:
    role = resources()["MemberRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    principal = trust["Principal"]["AWS"]["Fn::Sub"]
    condition = trust["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"]
    assert principal[0] == "arn:${AWS::Partition}:iam::${Central}:root"
    assert condition[0] == "arn:${AWS::Partition}:iam::${Central}:role/${NamePrefix}/*"
    # AND the central functions' roles are under that path, in a central deployment only
    role_path = sam_template()["Globals"]["Function"]["RolePath"]
    assert role_path == {
        "Fn::If": ["IsCentral", {"Fn::Sub": "/${NamePrefix}/"}, {"Ref": "AWS::NoValue"}]
    }
    assert role["Condition"] == "CreateMemberRole"


def test_central_functions_assume_only_the_member_role_inside_the_organization() -> None:
    seen = 0
    for function_id in functions():
        role = cloudformation()["Resources"][f"{function_id}Role"]["Properties"]
        for policy in role["Policies"]:
            if "Fn::If" not in policy:
                continue
            condition, central, absent = policy["Fn::If"]
            for statement in _statements(central["PolicyDocument"], function_id, False):
                if "sts:AssumeRole" not in statement.actions:
                    continue
                seen += 1
                assert condition == "IsCentral"
                assert absent == {"Ref": "AWS::NoValue"}
                assert statement.resources == (
                    "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}",
                )
                assert statement.condition == {
                    "StringEquals": {"aws:ResourceOrgID": "${OrganizationId}"}
                }
    assert seen == len(functions())


def test_a_member_stack_runs_no_function_and_single_is_the_default() -> None:
    template = sam_template()
    assert template["Parameters"]["DeploymentRole"]["Default"] == "single"
    for logical_id, resource in resources().items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            assert resource.get("Condition") == "IsNotMember", logical_id
        if logical_id.startswith("Central"):
            assert resource.get("Condition") == "IsCentral", logical_id
        if logical_id.startswith("MemberForward"):
            assert resource.get("Condition") == "IsMember", logical_id


def test_the_central_bus_admits_the_organization_only() -> None:
    policy = resources()["CentralEventBusPolicy"]["Properties"]
    statement = policy["Statement"]
    assert statement["Principal"] == "*"
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
    }


def _flat(pattern: dict[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    flat: dict[str, list[Any]] = {}
    for key, value in pattern.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _covers(broad: dict[str, Any], narrow: dict[str, Any]) -> bool:
    """Every event `narrow` matches is matched by `broad` (for these simple patterns)."""
    wide, tight = _flat(broad), _flat(narrow)
    return all(
        key in tight and all(v in values for v in tight[key]) for key, values in wide.items()
    )


def test_members_forward_everything_the_central_rules_match() -> None:
    forwards = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources().items()
        if logical_id.startswith("MemberForward") and resource["Type"] == "AWS::Events::Rule"
    }
    central = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources().items()
        if logical_id.startswith("Central") and resource["Type"] == "AWS::Events::Rule"
    }
    assert len(central) == 4
    for logical_id, rule in central.items():
        assert rule["EventBusName"] == {"Fn::GetAtt": ["CentralEventBus", "Name"]}
        assert any(_covers(f["EventPattern"], rule["EventPattern"]) for f in forwards.values()), (
            f"no member rule forwards what {logical_id} matches"
        )
    for logical_id, rule in forwards.items():
        (target,) = rule["Targets"]
        assert render(target["Arn"]).endswith("CentralEventBusArn}"), logical_id
        assert target["RoleArn"] == {"Fn::GetAtt": ["MemberForwardRole", "Arn"]}, logical_id


def test_every_function_rule_on_the_default_bus_has_its_twin_on_the_central_bus() -> None:
    # GIVEN the patterns of the functions' own rules (SAM events on the default bus)
    patterns = []
    for function_id in functions():
        for event in resources()[function_id]["Properties"].get("Events", {}).values():
            if event["Type"] == "EventBridgeRule":
                patterns.append((function_id, event["Properties"]["Pattern"]))
    central = [
        (resource["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0], resource["Properties"])
        for logical_id, resource in resources().items()
        if logical_id.startswith("Central") and resource["Type"] == "AWS::Events::Rule"
    ]
    # THEN member events reach each function as the account's own events do
    for function_id, pattern in patterns:
        assert any(
            target == function_id and rule["EventPattern"] == pattern for target, rule in central
        ), f"{function_id}: no central rule with the pattern {pattern}"
