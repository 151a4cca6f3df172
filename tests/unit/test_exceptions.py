"""Break-glass exception tags and SSM age limits, judged without AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ssm_guard.exceptions import (
    Verdict,
    iso,
    judge_exception,
    parse_timestamp,
    recheck_time,
    schedule_name,
    ssm_age_deadline,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
KEY = "ssm-guard:exception-until"


def judge(value: str | None, *, key: str = KEY, max_hours: int = 24):
    tags = {"environment": "prod"} if value is None else {"environment": "prod", key: value}
    return judge_exception(tags, tag_key=KEY, max_hours=max_hours, now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-03T18:00:00Z",
        "2026-12-03T20:00:00+02:00",
        "2026-12-04T12:00:00Z",
        "2026-12-03 13:00Z",
    ],
)
def test_a_zoned_time_within_the_maximum_is_granted(value: str) -> None:
    status = judge(value)
    assert status.verdict is Verdict.GRANTED
    assert status.until is not None
    assert NOW < status.until <= NOW + timedelta(hours=24)


def test_no_tag_is_no_exception() -> None:
    assert judge(None).verdict is Verdict.NONE


def test_the_tag_key_matches_case_insensitively() -> None:
    assert judge("2026-12-03T18:00:00Z", key="SSM-Guard:Exception-Until").verdict is Verdict.GRANTED


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "has no time"),
        ("   ", "has no time"),
        ("tomorrow", "not an ISO-8601"),
        ("2026-12-04", "no time of day"),
        ("2026-12-03T18:00:00", "no time zone"),
        ("2026-13-03T18:00:00Z", "not an ISO-8601"),
        ("2026-12-04T12:00:01Z", "more than 24 hours ahead"),
        ("2027-01-01T00:00:00Z", "more than 24 hours ahead"),
    ],
)
def test_missing_malformed_or_too_far_is_refused(value: str, why: str) -> None:
    status = judge(value)
    assert status.verdict is Verdict.REFUSED
    assert why in status.reason


def test_the_maximum_is_the_deployers() -> None:
    assert judge("2026-12-03T15:00:00Z", max_hours=2).verdict is Verdict.REFUSED
    assert judge("2026-12-03T13:59:00Z", max_hours=2).verdict is Verdict.GRANTED


@pytest.mark.parametrize("value", ["2026-12-03T12:00:00Z", "2026-12-01T00:00:00Z"])
def test_a_time_passed_is_expired(value: str) -> None:
    status = judge(value)
    assert status.verdict is Verdict.EXPIRED
    assert status.until_text == iso(parse_timestamp(value))


def test_age_deadline_is_off_by_default_and_counts_from_the_last_update() -> None:
    since = int(NOW.timestamp() * 1000)
    assert ssm_age_deadline(since, 0) is None
    assert ssm_age_deadline(None, 8) is None
    assert ssm_age_deadline(since, 8) == NOW + timedelta(hours=8)


def test_recheck_is_after_the_moment_on_a_whole_minute() -> None:
    at = recheck_time(datetime(2026, 12, 3, 18, 0, 0, tzinfo=UTC))
    assert at == datetime(2026, 12, 3, 18, 1, 0, tzinfo=UTC)
    at = recheck_time(datetime(2026, 12, 3, 18, 0, 30, tzinfo=UTC))
    assert at == datetime(2026, 12, 3, 18, 2, 0, tzinfo=UTC)


def test_schedule_names_are_valid_and_one_per_endpoint_purpose_and_moment() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/" + "e" * 63
    a = schedule_name("ssm-guard-" + "p" * 21, arn, "expiry", NOW)
    assert len(a) <= 64
    assert a == schedule_name("ssm-guard-" + "p" * 21, arn, "expiry", NOW)
    assert a != schedule_name("ssm-guard-" + "p" * 21, arn, "expiry", NOW + timedelta(hours=1))
    assert a != schedule_name("ssm-guard-" + "p" * 21, arn, "age", NOW)
