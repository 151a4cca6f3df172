"""The bad-input corpus (tests/data/bad_events): malformed and odd events through the enforcer's
handler. Each gets one clear log line, an answer rather than an exception (a Lambda retry could
not fix it, so nothing retries it), and changes nothing in AWS."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from _reliability import idempotency_table, recording_calls

from ssm_guard.handlers import on_endpoint_state_change

pytestmark = pytest.mark.unit
CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_events"

REJECTED = "malformed-event"
EXPECTED = {
    "01-no-detail": REJECTED,
    "02-detail-null": REJECTED,
    "03-detail-string-not-json": REJECTED,
    "04-detail-string-of-json": "endpoint-gone",
    "05-detail-a-list": REJECTED,
    "06-event-a-list": REJECTED,
    "07-event-a-string": REJECTED,
    "08-event-null": REJECTED,
    "09-event-empty-object": REJECTED,
    "10-name-a-number": REJECTED,
    "11-name-missing": REJECTED,
    "12-name-64-characters": REJECTED,
    "13-name-63-characters": "endpoint-gone",
    "14-name-unicode": REJECTED,
    "15-name-log-injection": REJECTED,
    "16-name-path-traversal": REJECTED,
    "17-name-leading-hyphen": REJECTED,
    "18-no-arn-anywhere": REJECTED,
    "19-arn-not-an-arn": REJECTED,
    "20-status-missing": REJECTED,
    "21-status-a-number": REJECTED,
    "22-status-empty": REJECTED,
    "23-status-unknown": "compliant",
    "24-status-lower-case": "compliant",
    "25-time-epoch-ms": "compliant",
    "26-time-epoch-ms-float": "compliant",
    "27-time-iso": "compliant",
    "28-time-garbage": REJECTED,
    "29-time-boolean": "compliant",
    "30-tags-map": "compliant",
    "31-tags-list-lower-case": "compliant",
    "32-tags-list-api-case": "compliant",
    "33-tags-a-string": REJECTED,
    "34-tags-list-of-strings": REJECTED,
    "35-tags-huge": "compliant",
    "36-tags-unicode-and-prod-lookalike": "compliant",
    "37-another-service-ec2": REJECTED,
    "38-sagemaker-model-state-change": REJECTED,
    "39-scheduled-event": REJECTED,
    "40-cloudtrail-create-endpoint": "ignored",
    "41-replayed-from-archive": "compliant",
    "42-retry-marker-tampered": REJECTED,
    "43-guard-own-alert": "ignored",
    "44-deeply-nested-extra-field": "compliant",
    "45-unknown-extra-fields": "compliant",
    "46-look-alike-source": REJECTED,
}
LOG_LINE = {REJECTED: "event rejected", "ignored": "event ignored"}


def test_the_corpus_has_at_least_30_events_each_with_an_expectation() -> None:
    names = sorted(p.stem for p in CORPUS.glob("*.json"))
    assert len(names) >= 30
    assert names == sorted(EXPECTED)


@pytest.fixture
def known_endpoint(account, monkeypatch) -> str:
    """`known-ep`: SSM on, its role already holding the policy (so a valid event has nothing
    to change), and the idempotency table the template creates."""
    idempotency_table(monkeypatch)
    role = account.role("known-role")
    account.iam.attach_role_policy(RoleName="known-role", PolicyArn=account.policy_arn)
    account.model("known-model", role)
    account.endpoint(
        "known-ep",
        [{"VariantName": "v", "ModelName": "known-model", "EnableSSMAccess": True}],
        tags={"environment": "dev"},
    )
    return role


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_event_is_answered_logged_and_changes_nothing(
    name, known_endpoint, guard, caplog
) -> None:
    # GIVEN one event of the corpus
    event = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    expected = EXPECTED[name]
    caplog.set_level(logging.INFO, logger="sagemaker-ssm-guard")
    # WHEN the enforcer's handler gets it
    with recording_calls() as calls:
        result = on_endpoint_state_change(event, guard)
    # THEN it answers (no exception, so Lambda does not retry it) with the expected decision
    assert result["decision"] == expected, result
    # AND it says so in one line with a fixed message
    messages = [r.getMessage() for r in caplog.records]
    assert LOG_LINE.get(expected, "endpoint evaluated") in messages
    # AND it changed nothing; a rejected event is not even read further
    assert calls.mutating() == []
    if expected == REJECTED:
        assert calls.calls == []
        assert result["reason"]
        assert "\n" not in result["reason"]
    assert guard.settings.policy_arn in [
        p["PolicyArn"]
        for p in guard.iam.list_attached_role_policies(RoleName="known-role")["AttachedPolicies"]
    ]


def test_a_replayed_event_is_a_duplicate_of_the_original(known_endpoint, guard) -> None:
    # GIVEN an event, and its replay from an EventBridge archive (new id, replay-name)
    replayed = json.loads((CORPUS / "41-replayed-from-archive.json").read_text())
    original = {k: v for k, v in replayed.items() if k != "replay-name"}
    original["id"] = "the-original-id"
    on_endpoint_state_change(original, guard)
    # WHEN the replay arrives THEN the first answer is reused: the endpoint is read (the work
    # is claimed after the reads), but nothing is decided or changed again
    with recording_calls() as calls:
        result = on_endpoint_state_change(replayed, guard)
    assert result["duplicate"] is True
    assert calls.operations("iam") == []
    assert calls.mutating() == []
