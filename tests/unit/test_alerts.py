"""Alerts: what they say, where they go, and that sending one never fails the guard."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ssm_guard import alerts
from ssm_guard.config_watch import on_config_state_change
from ssm_guard.decisions import Kind
from ssm_guard.endpoint import EndpointSnapshot
from ssm_guard.enforce import Outcome

pytestmark = pytest.mark.unit

ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/fraud-prod"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _snapshot(**extra) -> EndpointSnapshot:
    fields = {
        "name": "fraud-prod",
        "arn": ARN,
        "status": "InService",
        "config_name": "fraud-config",
        "config": {},
        "variants": (),
        "last_modified_ms": int(NOW.timestamp() * 1000),
    }
    return EndpointSnapshot(**{**fields, **extra})


def _outcome(decision=Kind.REVERTED, **details) -> Outcome:
    return Outcome(
        endpoint_name="fraud-prod",
        decision=decision,
        reason="SSM access is on for an endpoint tagged as production",
        production=True,
        ssm_variants=["blue", "shadow"],
        details={"action": "reverted", "new_config": "fraud-config-ssm-off-0123abcd", **details},
    )


def test_an_alert_carries_what_an_on_call_needs() -> None:
    # GIVEN a revert outcome
    alert = alerts.alert_for(
        _outcome(roles_detached=["arn:aws:iam::123456789012:role/r"]),
        _snapshot(),
        mode="enforce",
        now=NOW,
        enabled_by="arn:aws:sts::123456789012:assumed-role/dev/alice",
    )
    # THEN the subject is one line and the body names everything
    assert alert.subject == "[ssm-guard] SSM access reverted on production endpoint fraud-prod"
    text = alert.message()
    for fact in (
        "fraud-prod",
        ARN,
        "Account:       123456789012",
        "Region: us-east-1",
        "blue, shadow",
        "fraud-config",
        "fraud-config-ssm-off-0123abcd",
        "reverted",
        "assumed-role/dev/alice",
        "https://us-east-1.console.aws.amazon.com/sagemaker/home"
        "?region=us-east-1#/endpoints/fraud-prod",
        "2026-12-03T12:00:00Z",
        "roles_detached",
    ):
        assert fact in text
    detail = json.loads(json.dumps(alert.detail()))
    assert detail["variants"] == ["blue", "shadow"]
    assert detail["old_config"] == "fraud-config"


@pytest.mark.parametrize(
    ("arn", "host"),
    [
        (ARN, "https://us-east-1.console.aws.amazon.com"),
        (
            ARN.replace(":aws:", ":aws-cn:").replace("us-east-1", "cn-north-1"),
            "https://console.amazonaws.cn",
        ),
        (ARN.replace(":aws:", ":aws-us-gov:"), "https://console.amazonaws-us-gov.com"),
    ],
)
def test_console_links_follow_the_partition(arn: str, host: str) -> None:
    assert alerts.console_url(arn, "fraud-prod").startswith(host + "/sagemaker/home?region=")


def test_subjects_stay_one_ascii_line_under_100_characters() -> None:
    name = "e" * 63
    for kind in (Kind.REVERTED, Kind.EXCEPTION_REFUSED, Kind.REVERT_FAILED, Kind.ALERTED):
        subject = alerts.subject_for(kind, name, action="reverted", until="2026-12-03T18:00:00Z")
        assert len(subject) < 100
        assert subject.isascii()
    assert alerts.one_line("caf\u00e9\nline two") == "caf? line two"


def test_who_enabled_asks_cloudtrail_for_the_update_that_brought_the_config(guard) -> None:
    # GIVEN CloudTrail holding an UpdateEndpoint to the endpoint's config (lowerCamel params)
    client = boto3.client("cloudtrail")
    record = {
        "eventTime": "2026-12-03T11:50:00Z",
        "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/dev/alice"},
        "requestParameters": {"endpointName": "fraud-prod", "endpointConfigName": "fraud-config"},
    }
    other = {**record, "requestParameters": {"endpointName": "other", "endpointConfigName": "x"}}
    with Stubber(client) as stub:
        stub.add_response(
            "lookup_events",
            {
                "Events": [
                    {"CloudTrailEvent": json.dumps(other)},
                    {"CloudTrailEvent": json.dumps(record)},
                ]
            },
            {
                "LookupAttributes": [
                    {"AttributeKey": "EventName", "AttributeValue": "UpdateEndpoint"}
                ],
                "StartTime": ANY,
                "EndTime": ANY,
                "MaxResults": 50,
            },
        )
        guard.overrides["cloudtrail"] = client
        who = alerts.who_enabled(guard, _snapshot(), NOW)
    # THEN the alert can say who
    alice = "arn:aws:sts::123456789012:assumed-role/dev/alice"
    assert who == f"{alice} (UpdateEndpoint at 2026-12-03T11:50:00Z)"


def test_who_enabled_is_best_effort(guard) -> None:
    client = boto3.client("cloudtrail")
    with Stubber(client) as stub:
        stub.add_client_error("lookup_events", "AccessDeniedException", "no")
        guard.overrides["cloudtrail"] = client
        assert alerts.who_enabled(guard, _snapshot(), NOW) is None


def test_a_failed_alert_is_reported_not_raised(guard) -> None:
    # GIVEN a topic that refuses the message
    sns = boto3.client("sns")
    events = boto3.client("events")
    guard.settings = dataclasses.replace(
        guard.settings, alert_topic_arn="arn:aws:sns:us-east-1:123456789012:gone"
    )
    guard.overrides.update(sns=sns, events=events)
    alert = alerts.alert_for(_outcome(), _snapshot(), mode="enforce", now=NOW)
    with Stubber(sns) as sns_stub, Stubber(events) as events_stub:
        sns_stub.add_client_error("publish", "NotFound", "Topic does not exist")
        events_stub.add_response(
            "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}
        )
        # WHEN it is sent
        result = alerts.send(guard, alert)
    # THEN the guard carries on, saying the alert failed
    assert result == "failed"


def test_a_refused_custom_event_counts_as_a_failed_alert(guard) -> None:
    events = boto3.client("events")
    guard.overrides["events"] = events
    alert = alerts.alert_for(_outcome(), _snapshot(), mode="enforce", now=NOW)
    with Stubber(events) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]},
        )
        assert alerts.send(guard, alert) == "failed"


# -- the config early warning -----------------------------------------------------------------


def _config_event(name: str) -> dict:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Endpoint Config State Change",
        "detail": {"EndpointConfigName": name, "Tags": {"environment": "dev"}},
    }


def _config(account, name, *, ssm, tags):
    role = account.role(f"{name}-role")
    account.model(f"{name}-m", role)
    account.sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": f"{name}-m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": ssm,
            }
        ],
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def test_a_production_config_with_ssm_is_an_early_warning(account, guard, alert_inbox) -> None:
    # GIVEN a config created with SSM on and tagged production (the event's tags say dev)
    _config(account, "prod-cfg", ssm=True, tags={"Environment": "Production"})
    # WHEN its state-change event arrives
    result = on_config_state_change(_config_event("prod-cfg"), guard)
    # THEN people are warned, nothing else happens
    assert result["decision"] == "config-early-warning"
    [message] = alert_inbox.sns()
    assert (
        message["Subject"]
        == "[ssm-guard] Config prod-cfg has SSM access on and is tagged production"
    )
    [event] = alert_inbox.events()
    assert event["detail"]["new_config"] == "prod-cfg"
    assert "#/endpointConfig/prod-cfg" in event["detail"]["console_url"]


@pytest.mark.parametrize(
    ("ssm", "tags", "decision"),
    [(True, {"environment": "dev"}, "compliant"), (False, {"environment": "prod"}, "no-ssm")],
)
def test_other_configs_are_left_alone(account, guard, alert_inbox, ssm, tags, decision) -> None:
    _config(account, "cfg", ssm=ssm, tags=tags)
    assert on_config_state_change(_config_event("cfg"), guard)["decision"] == decision
    assert alert_inbox.sns() == []


@pytest.mark.parametrize(
    ("event", "decision"),
    [
        (_config_event("deleted-cfg"), "ignored"),
        ({"detail": {"EndpointConfigName": "bad name"}}, "malformed-event"),
        ({"source": "aws.ec2", "detail": {}}, "malformed-event"),
        ("not an event", "malformed-event"),
    ],
)
def test_gone_or_malformed_config_events_change_nothing(account, guard, event, decision) -> None:
    assert on_config_state_change(event, guard)["decision"] == decision


def test_the_sample_config_event_names_its_config() -> None:
    from pathlib import Path

    from ssm_guard.config_watch import config_name_of

    sample = Path(__file__).resolve().parents[2] / "events/config-created-ssm-production.json"
    assert config_name_of(json.loads(sample.read_text())) == "ImageClassifier-config-3"
