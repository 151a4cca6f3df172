"""The guardrail's other triggers: CloudTrail tag calls and the guard's scheduled re-checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ssm_guard.events import MalformedEventError
from ssm_guard.handlers import on_endpoint_state_change
from ssm_guard.triggers import parse_guardrail_trigger, recheck_event

pytestmark = pytest.mark.unit
EVENTS = Path(__file__).resolve().parents[2] / "events"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-prod"


def _cloudtrail(name: str = "AddTags", **detail) -> dict:
    return {
        "source": "aws.sagemaker",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {
            "eventSource": "sagemaker.amazonaws.com",
            "eventName": name,
            "requestParameters": {
                "resourceArn": ENDPOINT_ARN,
                "tags": [{"key": "environment", "value": "prod"}],
            },
            **detail,
        },
    }


@pytest.mark.parametrize("key", ["resourceArn", "ResourceArn"])
@pytest.mark.parametrize("call", ["AddTags", "DeleteTags"])
def test_tag_calls_on_an_endpoint_are_triggers_in_either_casing(key: str, call: str) -> None:
    event = _cloudtrail(call, requestParameters={key: ENDPOINT_ARN})
    trigger = parse_guardrail_trigger(event)
    assert trigger is not None
    assert trigger.endpoint_arn == ENDPOINT_ARN
    assert trigger.endpoint_name is None
    assert trigger.ignore is None


@pytest.mark.parametrize(
    ("event", "ignored"),
    [
        (_cloudtrail(errorCode="AccessDenied"), "the call failed"),
        (
            _cloudtrail(
                requestParameters={"resourceArn": ENDPOINT_ARN.replace("endpoint/", "model/")}
            ),
            "no endpoint",
        ),
        (_cloudtrail("CreateEndpoint"), "not a tag change"),
        (
            {"source": "sagemaker-ssm-guard", "detail-type": "SageMaker SSM Guard Alert"},
            "own alert",
        ),
    ],
)
def test_tag_calls_that_change_no_endpoint_are_ignored(event: dict, ignored: str) -> None:
    trigger = parse_guardrail_trigger(event)
    assert trigger is not None
    assert ignored in (trigger.ignore or "")


@pytest.mark.parametrize(
    "event",
    [
        _cloudtrail(requestParameters="nope"),
        _cloudtrail(requestParameters={"tags": []}),
        _cloudtrail(requestParameters={"resourceArn": "arn:aws:s3:::bucket"}),
        _cloudtrail(eventSource="ec2.amazonaws.com"),
        {
            "source": "sagemaker-ssm-guard",
            "detail-type": "SageMaker SSM Guard Recheck",
            "detail": {},
        },
        {
            "source": "sagemaker-ssm-guard",
            "detail-type": "SageMaker SSM Guard Recheck",
            "detail": "{",
        },
    ],
)
def test_broken_trigger_events_are_malformed(event: dict) -> None:
    with pytest.raises(MalformedEventError):
        parse_guardrail_trigger(event)


def test_other_events_are_not_guardrail_triggers() -> None:
    event = json.loads((EVENTS / "endpoint-in-service.json").read_text())
    assert parse_guardrail_trigger(event) is None
    assert parse_guardrail_trigger("text") is None


def test_a_recheck_event_names_its_endpoint() -> None:
    trigger = parse_guardrail_trigger(recheck_event("fraud-prod", ENDPOINT_ARN, "expiry"))
    assert trigger is not None
    assert trigger.endpoint_name == "fraud-prod"
    assert trigger.why == "recheck:expiry"


def test_tags_added_after_creation_lead_to_the_same_evaluation(
    account, guard, updatable, alert_inbox
) -> None:
    # GIVEN a dev endpoint with SSM on, whose name has capitals (the ARN lower-cases them)
    role = account.role("r")
    account.model("m", role)
    account.endpoint(
        "Fraud-Prod", [{"VariantName": "v", "ModelName": "m", "EnableSSMAccess": True}]
    )
    arn = account.sagemaker.describe_endpoint(EndpointName="Fraud-Prod")["EndpointArn"]
    # WHEN someone tags it production and CloudTrail reports the AddTags
    account.sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "env", "Value": "production"}])
    assert ENDPOINT_ARN.endswith("endpoint/fraud-prod")
    event = _cloudtrail(requestParameters={"resourceArn": ENDPOINT_ARN})
    result = on_endpoint_state_change(event, guard)
    # THEN the endpoint is evaluated on its live tags and reverted
    assert result["decision"] == "reverted"
    assert result["endpoint_name"] == "Fraud-Prod"
    assert len(updatable.updates) == 1


def test_a_scheduled_recheck_at_expiry_reverts(account, guard, updatable, alert_inbox) -> None:
    # GIVEN a production endpoint whose exception has just ended
    role = account.role("r")
    account.model("m", role)
    until = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    account.endpoint(
        "fraud-prod",
        [{"VariantName": "v", "ModelName": "m", "EnableSSMAccess": True}],
        tags={"environment": "prod", "ssm-guard:exception-until": until},
    )
    # WHEN the expiry schedule invokes the enforcer
    result = on_endpoint_state_change(recheck_event("fraud-prod", ENDPOINT_ARN, "expiry"), guard)
    # THEN access is taken back without waiting for another event
    assert result["decision"] == "exception-expired"
    assert result["details"]["action"] == "reverted"


def test_a_tag_call_on_a_deleted_endpoint_is_answered(account, guard) -> None:
    result = on_endpoint_state_change(_cloudtrail(), guard)
    assert result["decision"] == "endpoint-gone"


def test_the_sample_cloudtrail_event_is_a_trigger() -> None:
    event = json.loads((EVENTS / "cloudtrail-addtags-endpoint.json").read_text())
    trigger = parse_guardrail_trigger(event)
    assert trigger is not None
    assert trigger.endpoint_arn == event["detail"]["requestParameters"]["resourceArn"]
