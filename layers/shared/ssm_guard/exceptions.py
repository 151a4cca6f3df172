"""Break-glass exceptions and SSM age limits: when SSM access may stay on. Pure: no AWS here.

A production endpoint tagged `ssm-guard:exception-until = <ISO-8601 time with a zone>` keeps SSM
access until that time, if the time is no further ahead than the deployer's maximum. Past it,
the guard takes access back; a one-time EventBridge Scheduler schedule re-checks the endpoint at
expiry so that nobody has to wait for another event.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# EventBridge Scheduler schedule names: 1-64 of letters, digits, - _ . (botocore model).
MAX_SCHEDULE_NAME = 64
# A schedule fires within its minute; re-check a little after the moment, never before it.
RECHECK_MARGIN = timedelta(minutes=1)


class Verdict(StrEnum):
    NONE = "none"
    GRANTED = "granted"
    EXPIRED = "expired"
    REFUSED = "refused"


@dataclass(frozen=True)
class ExceptionStatus:
    """What the endpoint's exception tag says, judged at `now`."""

    verdict: Verdict
    reason: str = ""
    until: datetime | None = None
    raw: str | None = None

    @property
    def until_text(self) -> str | None:
        return iso(self.until) if self.until else None


def iso(moment: datetime) -> str:
    """`2026-12-03T18:00:00Z`: the form alerts, tags and the CLI print."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(raw: str) -> datetime:
    """An ISO-8601 time with a zone (`Z` or `+hh:mm`); raise ValueError otherwise.

    A time without a zone is refused rather than guessed: read in the wrong zone it would keep
    SSM access on a production endpoint for hours longer than meant.
    """
    text = raw.strip()
    if "T" not in text.upper() and " " not in text:
        raise ValueError(f"{raw!r} has no time of day (expected e.g. 2026-12-03T18:00:00Z)")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not an ISO-8601 time (e.g. 2026-12-03T18:00:00Z)") from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{raw!r} has no time zone (add Z for UTC, or +hh:mm)")
    return moment.astimezone(UTC)


def find_tag(tags: Mapping[str, str], key: str) -> tuple[str, str] | None:
    """The tag under `key`, matched exactly, else case-insensitively when only one matches."""
    if key in tags:
        return key, tags[key]
    matches = [(k, v) for k, v in tags.items() if k.strip().lower() == key.lower()]
    return matches[0] if len(matches) == 1 else None


def judge_exception(
    tags: Mapping[str, str], *, tag_key: str, max_hours: int, now: datetime
) -> ExceptionStatus:
    """Granted when the tag holds a zoned time in (now, now + max_hours]; expired when that time
    has passed; refused when the value is missing, malformed or too far ahead."""
    found = find_tag(tags, tag_key)
    if found is None:
        return ExceptionStatus(Verdict.NONE, "no exception tag")
    _, raw = found
    if not raw.strip():
        return ExceptionStatus(Verdict.REFUSED, f"the {tag_key} tag has no time", raw=raw)
    try:
        until = parse_timestamp(raw)
    except ValueError as exc:
        return ExceptionStatus(Verdict.REFUSED, str(exc), raw=raw)
    if until <= now:
        return ExceptionStatus(Verdict.EXPIRED, f"the exception ended at {iso(until)}", until, raw)
    limit = now + timedelta(hours=max_hours)
    if until > limit:
        return ExceptionStatus(
            Verdict.REFUSED,
            f"{iso(until)} is more than {max_hours} hours ahead (latest allowed {iso(limit)})",
            until,
            raw,
        )
    return ExceptionStatus(Verdict.GRANTED, f"SSM access allowed until {iso(until)}", until, raw)


def ssm_age_deadline(since_ms: int | None, max_hours: int) -> datetime | None:
    """When a non-production endpoint's SSM access runs out, or None when no limit applies.

    NOTE: the endpoint's LastModifiedTime stands for "SSM on since": the SSM config was deployed
    at the last update or before it, so the age is never overstated and access is never taken
    back early (DescribeEndpoint has no per-variant deployment time).
    """
    if max_hours <= 0 or since_ms is None:
        return None
    return datetime.fromtimestamp(since_ms / 1000, tz=UTC) + timedelta(hours=max_hours)


def recheck_time(moment: datetime) -> datetime:
    """The first whole minute at least RECHECK_MARGIN after `moment` (Scheduler `at()` runs at
    minute granularity), so the re-check finds the moment passed."""
    later = moment.astimezone(UTC) + RECHECK_MARGIN
    minutes = math.ceil(later.timestamp() / 60)
    return datetime.fromtimestamp(minutes * 60, tz=UTC)


def schedule_name(prefix: str, endpoint_arn: str, purpose: str, moment: datetime) -> str:
    """`<prefix>-<purpose>-<hash>`: one schedule per endpoint, purpose and moment, so the same
    re-check asked twice is created once (the second create conflicts)."""
    digest = hashlib.sha256(f"{endpoint_arn}|{purpose}|{iso(moment)}".encode()).hexdigest()[:16]
    head = f"{prefix}-{purpose}"[: MAX_SCHEDULE_NAME - len(digest) - 1]
    return f"{head}-{digest}"
