"""Asking CloudTrail who called an API (best effort: the alert is sent either way)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient

# LookupEvents allows 2 calls a second per account; one page is enough to find a recent call.
MAX_RESULTS = 50
# Best effort: one try, short timeouts. An answer that comes late is worth less than the alert.
_BEST_EFFORT = Config(
    retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5
)


def best_effort_client() -> CloudTrailClient:
    """A CloudTrail client that fails fast instead of retrying (the alert waits for it)."""
    session = boto3.session.Session()
    client: CloudTrailClient = session.client("cloudtrail", config=_BEST_EFFORT)
    return client


def recent_calls(
    client: CloudTrailClient, event_name: str, start: datetime, end: datetime
) -> Iterator[dict[str, Any]]:
    """Management events named `event_name` between `start` and `end`, newest first, each with
    its CloudTrail record parsed (`userIdentity`, `requestParameters`, `eventTime`...)."""
    response = client.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}],
        StartTime=start,
        EndTime=end,
        MaxResults=MAX_RESULTS,
    )
    for event in response.get("Events", []):
        raw = event.get("CloudTrailEvent")
        if not raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
