"""`ssm-guard member-template`: the member stack as plain CloudFormation, for service-managed
StackSets (which take no transform)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _iam_template import cloudformation

from ssm_guard.cli.main import main
from ssm_guard.cli.member_template import condition_value, member_template

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PSEUDO = {"AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::NoValue", "AWS::URLSuffix"}


@pytest.fixture(scope="module")
def template() -> dict:
    return member_template(cloudformation())


def test_conditions_are_decided_by_the_deployment_role_where_they_can_be() -> None:
    conditions = cloudformation()["Conditions"]

    def value(name: str) -> bool | None:
        return condition_value({"Condition": name}, conditions)

    assert value("IsMember") is True
    assert value("IsNotMember") is False
    assert value("IsCentral") is False
    assert value("EmailAlerts") is False
    # AND those that also depend on other parameters are left to CloudFormation
    assert value("CreateMemberRole") is None
    assert value("SessionLogging") is None


def test_a_member_stack_holds_no_function_and_only_member_parameters(template) -> None:
    kinds = {resource["Type"] for resource in template["Resources"].values()}
    assert "Transform" not in template
    assert not any(kind.startswith(("AWS::Serverless", "AWS::Lambda")) for kind in kinds)
    assert {"MemberRole", "MemberForwardRole", "MemberForwardEndpointStates", "SessionPolicy"} <= (
        set(template["Resources"])
    )
    assert template["Parameters"]["DeploymentRole"]["AllowedValues"] == ["member"]
    assert "OrganizationId" not in template["Parameters"]
    assert "GuardrailMode" not in template["Parameters"]


def test_everything_the_member_stack_refers_to_is_in_it(template) -> None:
    from ssm_guard.cli.member_template import _references

    names = set(template["Parameters"]) | set(template["Resources"]) | PSEUDO
    names |= set(template.get("Conditions", {})) | {"Central"}  # a Sub variable of MemberRole
    missing = _references(template) - names
    assert not missing, f"the member template refers to {sorted(missing)}, which it lacks"


def test_the_member_stack_passes_cfn_lint(template) -> None:
    from cfnlint.api import lint

    matches = lint(json.dumps(template))
    assert not matches, "\n".join(str(match) for match in matches)


def test_the_command_writes_the_template(tmp_path, capsys) -> None:
    out = tmp_path / "member.json"
    code = main(["member-template", "--template", str(ROOT / "template.yaml"), "-o", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["Parameters"]["DeploymentRole"]["Default"] == "member"
    assert main(["member-template", "--template", str(tmp_path / "missing.yaml")]) == 2
