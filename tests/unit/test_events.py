"""Reading endpoint events: statuses, tags, times and the shapes AWS really sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssm_guard.events import (
    MalformedEventError,
    epoch_millis,
    normalize_status,
    normalize_tags,
    parse_endpoint_event,
)

pytestmark = pytest.mark.unit
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("IN_SERVICE", "InService"),
        ("in_service", "InService"),
        ("InService", "InService"),
        ("UPDATE_ROLLBACK_FAILED", "UpdateRollbackFailed"),
        ("DELETED", "Deleted"),
        ("SOMETHING_NEW", "SOMETHING_NEW"),
    ],
)
def test_status_is_normalized_to_api_casing(raw: str, expected: str) -> None:
    assert normalize_status(raw) == expected


def test_tags_as_map_and_as_lists_read_the_same() -> None:
    expected = {"env": "prod", "team": "ml"}
    assert normalize_tags({"env": "prod", "team": "ml"}) == expected
    assert normalize_tags([{"key": "env", "value": "prod"}, {"key": "team", "value": "ml"}]) == (
        expected
    )
    assert normalize_tags([{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "ml"}]) == (
        expected
    )
    assert normalize_tags(None) == {}


def test_times_accept_epoch_ms_float_and_iso() -> None:
    assert epoch_millis(1764770797000) == 1764770797000
    assert epoch_millis(1764770800123.0) == 1764770800123
    assert epoch_millis("2025-12-03T14:06:37Z") == 1764770797000
    with pytest.raises(MalformedEventError):
        epoch_millis("yesterday")


@pytest.mark.parametrize("sample", sorted(p.name for p in EVENTS.glob("endpoint-*.json")))
def test_every_sample_endpoint_event_parses(sample: str) -> None:
    event = json.loads((EVENTS / sample).read_text())
    parsed = parse_endpoint_event(event)
    assert parsed.endpoint_name == event["detail"]["EndpointName"]
    assert parsed.endpoint_arn.startswith("arn:aws:sagemaker:")


def test_name_is_taken_from_the_detail_never_from_the_lowercased_arn() -> None:
    # GIVEN a production event whose ARN carries the lower-cased name
    event = json.loads((EVENTS / "endpoint-in-service-production.json").read_text())
    # WHEN it is parsed
    parsed = parse_endpoint_event(event)
    # THEN the real, mixed-case name is kept
    assert parsed.endpoint_name == "ImageClassifier"
    assert parsed.endpoint_arn.endswith("/imageclassifier")


def test_duplicates_share_an_idempotency_key_despite_other_event_ids() -> None:
    event = json.loads((EVENTS / "endpoint-in-service.json").read_text())
    duplicate = {**event, "id": "another-id"}
    assert (
        parse_endpoint_event(event).idempotency_key
        == parse_endpoint_event(duplicate).idempotency_key
    )


@pytest.mark.parametrize(
    "event",
    [
        None,
        "text",
        {},
        {"detail": "not json"},
        {"detail": {"EndpointStatus": "IN_SERVICE"}},
        {"detail": {"EndpointName": "bad_name", "EndpointStatus": "IN_SERVICE"}},
        {"detail": {"EndpointName": "a" * 64, "EndpointStatus": "IN_SERVICE"}},
        {"source": "aws.ec2", "detail": {"EndpointName": "x", "EndpointStatus": "IN_SERVICE"}},
        {"detail": {"EndpointName": "ok", "EndpointStatus": 3}},
        {"detail": {"EndpointName": "ok", "EndpointStatus": "IN_SERVICE"}},
    ],
)
def test_malformed_events_are_rejected_clearly(event: object) -> None:
    with pytest.raises(MalformedEventError):
        parse_endpoint_event(event)
