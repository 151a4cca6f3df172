"""Putting the guard's own events on an EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


class PutEventsError(RuntimeError):
    """EventBridge accepted the call but refused the entry."""


def put_event(
    client: EventBridgeClient,
    *,
    bus_name: str,
    source: str,
    detail_type: str,
    detail: Mapping[str, Any],
    resources: Sequence[str] = (),
) -> None:
    """One custom event. PutEvents reports a refused entry in its answer, not as an error."""
    response = client.put_events(
        Entries=[
            {
                "EventBusName": bus_name,
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, default=str, sort_keys=True),
                "Resources": list(resources),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        entry = (response.get("Entries") or [{}])[0]
        raise PutEventsError(str(entry.get("ErrorCode") or "the event was refused"))
