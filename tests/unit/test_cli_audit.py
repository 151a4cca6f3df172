"""`ssm-guard audit`: the guard's evaluation, read-only, as a table or JSON."""

from __future__ import annotations

import json

import pytest
from _reliability import Faults, injected, recording_calls

from ssm_guard.cli.main import main

pytestmark = pytest.mark.unit
ALGORITHM_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"


@pytest.fixture
def estate(account, monkeypatch) -> dict[str, str]:
    """Five endpoints, one of each kind the audit must explain."""
    monkeypatch.setenv("SESSION_POLICY_ARN", account.policy_arn)
    roles = {name: account.role(name) for name in ("dev", "ok", "plain", "prod", "algo")}
    account.iam.attach_role_policy(RoleName="ok", PolicyArn=account.policy_arn)
    for name in ("dev", "ok", "plain", "prod"):
        account.model(f"{name}-m", roles[name])
    account.sagemaker.create_model(
        ModelName="algo-m",
        ExecutionRoleArn=roles["algo"],
        PrimaryContainer={"Image": ALGORITHM_IMAGE},
    )

    def endpoint(name: str, ssm: bool, tags: dict[str, str]) -> None:
        variant = {"VariantName": "blue", "ModelName": f"{name}-m", "EnableSSMAccess": ssm}
        account.endpoint(f"{name}-ep", [variant], tags=tags)

    endpoint("dev", True, {"environment": "dev"})
    endpoint("ok", True, {"environment": "dev"})
    endpoint("plain", False, {})
    endpoint("prod", True, {"Environment": "Prod", "ssm-guard:exception-until": "soon"})
    endpoint("algo", True, {})
    return roles


def _audit(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_json_says_what_the_guard_sees_and_would_do(estate, capsys) -> None:
    # WHEN the whole account is audited
    with recording_calls() as calls:
        code, out, _ = _audit(capsys, "--json")
    rows = {row["endpoint"]: row for row in json.loads(out)}
    # THEN every endpoint is there with the decision it would get, and nothing was changed
    assert code == 0
    assert calls.mutating() == []
    assert sorted(rows) == ["algo-ep", "dev-ep", "ok-ep", "plain-ep", "prod-ep"]
    assert rows["dev-ep"]["would_do"] == "attached"
    assert rows["dev-ep"]["roles"] == {estate["dev"]: False}
    assert rows["dev-ep"]["ssm"] == {"blue": True}
    assert rows["ok-ep"]["would_do"] == "compliant"
    assert rows["ok-ep"]["roles"] == {estate["ok"]: True}
    assert rows["plain-ep"]["would_do"] == "no-ssm"
    assert rows["plain-ep"]["ssm"] == {"blue": False}
    assert rows["prod-ep"]["production"] is True
    assert rows["prod-ep"]["exception"]["verdict"] == "refused"
    assert rows["prod-ep"]["would_do"] == "exception-refused"
    assert "would revert" in rows["prod-ep"]["reason"]
    assert rows["algo-ep"]["would_do"] == "ssm-unreachable"
    assert "first-party algorithm" in rows["algo-ep"]["unreachable"]["blue"]
    assert rows["algo-ep"]["roles"] == {}


def test_audit_table_has_one_row_per_endpoint(estate, capsys) -> None:
    code, out, _ = _audit(capsys)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split()[:3] == ["endpoint", "prod", "status"]
    dev = next(line for line in lines if line.startswith("dev-ep"))
    assert "dev:missing" in dev
    assert "blue=on" in dev
    algo = next(line for line in lines if line.startswith("algo-ep"))
    assert "first-party algorithm" in algo


def test_audit_of_named_endpoints_reads_only_those(estate, capsys) -> None:
    with recording_calls() as calls:
        code, out, err = _audit(capsys, "--json", "ok-ep", "no-such-ep")
    rows = {row["endpoint"]: row for row in json.loads(out)}
    # A named endpoint that does not exist is reported and fails the run (a typo in a script).
    assert code == 1
    assert "no endpoint named no-such-ep" in err
    assert rows["ok-ep"]["would_do"] == "compliant"
    assert rows["no-such-ep"]["would_do"] == "endpoint-gone"
    assert calls.count("Search") == 0


def test_a_bad_endpoint_name_is_a_clear_usage_error_before_any_aws_call(estate, capsys) -> None:
    with recording_calls() as calls:
        code, out, err = _audit(capsys, "bad_name!")
    assert code == 2
    assert "bad_name!" in err
    assert "not a valid SageMaker name" in err
    assert out == ""
    assert [c for c in calls.calls if c[0] == "sagemaker"] == []


def test_without_the_policy_arn_roles_show_as_unknown(estate, capsys, monkeypatch) -> None:
    # GIVEN no SESSION_POLICY_ARN and no stack policy under the default name (AWS answers
    # NoSuchEntity; moto lists no role instead, so the answer is injected)
    monkeypatch.delenv("SESSION_POLICY_ARN")
    faults = Faults()
    faults.add("ListEntitiesForPolicy", "NoSuchEntity", "Policy does not exist")
    with injected(faults):
        code, out, _ = _audit(capsys, "--json", "dev-ep")
    (row,) = json.loads(out)
    # THEN the audit still answers, and says it cannot tell whether the role holds the policy
    assert faults.fired["ListEntitiesForPolicy"] == 1
    assert code == 0
    assert row["roles"] == {estate["dev"]: None}
    assert row["would_do"] == "attached"
