"""Enforcement against an in-process moto account: read live state, attach, never half-do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssm_guard.decisions import Kind
from ssm_guard.enforce import evaluate_endpoint
from ssm_guard.handlers import on_endpoint_state_change

pytestmark = pytest.mark.unit
EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_ssm_endpoint_roles_get_the_session_policy_once(account, guard) -> None:
    # GIVEN a dev endpoint with two SSM variants on two roles, one of them multi-container
    role_a, role_b = account.role("team-a"), account.role("team-b", path="/ml/")
    account.model("single", role_a)
    account.model("pipeline", role_b, containers=2)
    account.endpoint(
        "dev-ep",
        [
            {"VariantName": "blue", "ModelName": "single", "EnableSSMAccess": True},
            {"VariantName": "green", "ModelName": "pipeline", "EnableSSMAccess": True},
        ],
        tags={"environment": "dev"},
    )
    # WHEN the endpoint is evaluated
    outcome = evaluate_endpoint(guard, "dev-ep")
    # THEN both roles hold the policy, and a second evaluation changes nothing
    assert outcome.decision is Kind.ATTACHED
    assert sorted(outcome.roles_attached) == sorted([role_a, role_b])
    assert account.policy_arn in account.attached(role_a)
    assert account.policy_arn in account.attached(role_b)
    again = evaluate_endpoint(guard, "dev-ep")
    assert again.decision is Kind.COMPLIANT
    assert again.roles_attached == []


def test_endpoint_without_ssm_touches_no_role(account, guard) -> None:
    role = account.role("plain")
    account.model("m", role)
    account.endpoint("plain", [{"VariantName": "v", "ModelName": "m"}])
    outcome = evaluate_endpoint(guard, "plain")
    assert outcome.decision is Kind.NO_SSM
    assert account.attached(role) == []


def test_production_endpoint_with_ssm_is_reverted_not_attached(account, guard, updatable) -> None:
    # The guardrail's behaviour in full is in test_guardrail.py.
    role = account.role("prod-role")
    account.model("m", role)
    account.endpoint(
        "prod-ep",
        [{"VariantName": "v", "ModelName": "m", "EnableSSMAccess": True}],
        tags={"Environment": "PROD"},
    )
    outcome = evaluate_endpoint(guard, "prod-ep")
    assert outcome.decision is Kind.REVERTED
    assert outcome.production
    assert account.attached(role) == []


def test_role_at_its_policy_quota_gets_a_clear_decision_and_no_half_done_state(
    account, guard
) -> None:
    # GIVEN two roles, the second already holding 10 managed policies
    free, full = account.role("free"), account.role("full")
    for i in range(10):
        arn = account.iam.create_policy(
            PolicyName=f"filler-{i}",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                }
            ),
        )["Policy"]["Arn"]
        account.iam.attach_role_policy(RoleName="full", PolicyArn=arn)
    account.model("m-free", free)
    account.model("m-full", full)
    account.endpoint(
        "quota-ep",
        [
            {"VariantName": "a", "ModelName": "m-free", "EnableSSMAccess": True},
            {"VariantName": "b", "ModelName": "m-full", "EnableSSMAccess": True},
        ],
    )
    # WHEN it is evaluated
    outcome = evaluate_endpoint(guard, "quota-ep")
    # THEN the decision names the full role and neither role was changed
    assert outcome.decision is Kind.ROLE_POLICY_QUOTA
    assert full in outcome.reason
    assert account.attached(free) == []


def test_vanished_endpoint_is_an_outcome_not_an_error(account, guard) -> None:
    assert evaluate_endpoint(guard, "never-existed").decision is Kind.ENDPOINT_GONE


def test_handler_returns_the_decision_as_json(account, guard) -> None:
    role = account.role("r")
    account.model("m", role)
    account.endpoint(
        "fraud-detector-dev", [{"VariantName": "v", "ModelName": "m", "EnableSSMAccess": True}]
    )
    event = json.loads((EVENTS / "endpoint-in-service.json").read_text())
    result = on_endpoint_state_change(event, guard)
    assert json.loads(json.dumps(result))["decision"] == "attached"
    assert result["roles_attached"] == [role]


def test_handler_answers_a_malformed_event_without_raising(guard) -> None:
    result = on_endpoint_state_change({"detail": "nonsense"}, guard)
    assert result["decision"] == "malformed-event"


def test_dry_run_reports_the_attach_and_changes_nothing(account, guard) -> None:
    role = account.role("r")
    account.model("m", role)
    account.endpoint("dry", [{"VariantName": "v", "ModelName": "m", "EnableSSMAccess": True}])
    guard.dry_run = True
    outcome = evaluate_endpoint(guard, "dry")
    assert outcome.decision is Kind.ATTACHED
    assert outcome.dry_run
    assert outcome.roles_attached == [role]
    assert account.attached(role) == []


def test_endpoint_whose_config_was_deleted_is_unreadable_not_gone(account, guard) -> None:
    # GIVEN a production endpoint with SSM on whose config someone deleted (AWS allows it)
    role = account.role("orphan-role")
    account.model("m", role)
    account.endpoint(
        "orphan-prod",
        [{"VariantName": "v", "ModelName": "m", "EnableSSMAccess": True}],
        tags={"environment": "prod"},
    )
    account.sagemaker.delete_endpoint_config(EndpointConfigName="orphan-prod-config")
    # WHEN it is evaluated
    outcome = evaluate_endpoint(guard, "orphan-prod")
    # THEN it is reported as unreadable production, never as deleted, and nothing is attached
    assert outcome.decision is Kind.ENDPOINT_UNREADABLE
    assert outcome.production
    assert "no longer exists" in outcome.reason
    assert account.attached(role) == []


def test_handler_alerts_once_on_an_unreadable_endpoint(account, guard) -> None:
    role = account.role("r2")
    account.model("m2", role)
    account.endpoint(
        "fraud-detector-dev", [{"VariantName": "v", "ModelName": "m2", "EnableSSMAccess": True}]
    )
    account.sagemaker.delete_model(ModelName="m2")
    event = json.loads((EVENTS / "endpoint-in-service.json").read_text())
    result = on_endpoint_state_change(event, guard)
    assert result["decision"] == "endpoint-unreadable"
    assert result["details"]["alert"] == "sent"
    assert "config or model was deleted" in result["details"]["alert_subject"]


def test_a_truly_deleted_endpoint_is_still_gone(account, guard) -> None:
    role = account.role("r3")
    account.model("m3", role)
    account.endpoint("short-lived", [{"VariantName": "v", "ModelName": "m3"}])
    account.sagemaker.delete_endpoint(EndpointName="short-lived")
    assert evaluate_endpoint(guard, "short-lived").decision is Kind.ENDPOINT_GONE
