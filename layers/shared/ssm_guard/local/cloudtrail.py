"""CloudTrail `LookupEvents` over the API calls the emulator reported.

moto 5.2.5 has no LookupEvents. The SageMaker additions record each mutating call here (the
last 10,000), as CloudTrail's event history does with or without a trail, so that code asking
CloudTrail who made a call gets the records back: newest first, 50 per page at most, filtered by
one lookup attribute and a time range as AWS does. The same calls reach EventBridge as
`AWS API Call via CloudTrail` events only while a trail is logging, as in AWS.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moto.cloudtrail.responses import CloudTrailResponse
from moto.core.exceptions import JsonRESTError

from ssm_guard.local import runtime as runtime_module

if TYPE_CHECKING:
    from ssm_guard.local.runtime import Runtime

MAX_RESULTS = 50
_RESOURCE_TYPES = {
    "endpoint": "AWS::SageMaker::Endpoint",
    "endpoint-config": "AWS::SageMaker::EndpointConfig",
    "model": "AWS::SageMaker::Model",
}
_NAMED = {
    "endpointName": "AWS::SageMaker::Endpoint",
    "endpointConfigName": "AWS::SageMaker::EndpointConfig",
    "modelName": "AWS::SageMaker::Model",
}

_originals: dict[str, Any] = {}


@dataclass(frozen=True)
class TrailRecord:
    time: datetime
    detail: dict[str, Any]

    def resources(self) -> list[dict[str, str]]:
        request = self.detail.get("requestParameters") or {}
        arn = request.get("resourceArn")
        if isinstance(arn, str):
            kind = arn.split(":")[-1].split("/")[0]
            return [{"ResourceType": _RESOURCE_TYPES.get(kind, kind), "ResourceName": arn}]
        return [
            {"ResourceType": kind, "ResourceName": request[key]}
            for key, kind in _NAMED.items()
            if isinstance(request.get(key), str)
        ]

    def as_event(self) -> dict[str, Any]:
        """One item of LookupEvents' `Events`."""
        return {
            "EventId": self.detail["eventID"],
            "EventName": self.detail["eventName"],
            "ReadOnly": str(self.detail.get("readOnly", False)).lower(),
            "EventTime": self.time.timestamp(),
            "EventSource": self.detail["eventSource"],
            "Username": self.detail.get("userIdentity", {}).get("arn", "").rsplit("/", 1)[-1],
            "Resources": self.resources(),
            "CloudTrailEvent": json.dumps(self.detail, default=str),
        }

    def matches(self, key: str, value: str) -> bool:
        event = self.as_event()
        if key in ("ResourceName", "ResourceType"):
            return any(resource[key] == value for resource in event["Resources"])
        return str(event.get(key, "")) == value


def trail_is_logging(account_id: str, region: str) -> bool:
    """Whether a trail logs this region's management events, which EventBridge needs to see
    `AWS API Call via CloudTrail` events (aws-facts.md §1.7)."""
    from moto.cloudtrail.models import cloudtrail_backends

    for backend in cloudtrail_backends[account_id].values():
        for trail in backend.trails.values():
            if trail.status.is_logging and (trail.is_multi_region or trail.region_name == region):
                return True
    return False


def record(rt: Runtime, detail: dict[str, Any]) -> None:
    rt.record_cloudtrail(TrailRecord(time=datetime.now(UTC), detail=detail))


class CloudTrailLookupError(JsonRESTError):
    """What CloudTrail answers a bad LookupEvents request (HTTP 400)."""


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lookup(
    records: list[TrailRecord],
    *,
    attributes: list[dict[str, str]] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """One page of LookupEvents, newest first."""
    if attributes and len(attributes) > 1:
        raise CloudTrailLookupError(
            "InvalidLookupAttributesException", "You cannot specify more than one lookup attribute."
        )
    size = MAX_RESULTS if max_results is None else int(max_results)
    if not 1 <= size <= MAX_RESULTS:
        raise CloudTrailLookupError(
            "InvalidMaxResultsException", "MaxResults must be from 1 to 50."
        )
    found = [
        item
        for item in records
        if (start is None or item.time >= start)
        and (end is None or item.time <= end)
        and all(item.matches(a["AttributeKey"], a["AttributeValue"]) for a in attributes or [])
    ]
    found.reverse()
    offset = 0
    if next_token:
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(next_token.encode()))["offset"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise CloudTrailLookupError("InvalidNextTokenException", "Invalid NextToken.") from exc
    page: dict[str, Any] = {"Events": [item.as_event() for item in found[offset : offset + size]]}
    if offset + size < len(found):
        token = json.dumps({"offset": offset + size}).encode()
        page["NextToken"] = base64.urlsafe_b64encode(token).decode()
    return page


def _response_lookup_events(self: CloudTrailResponse) -> str:
    rt = runtime_module.current()
    records = rt.cloudtrail_records() if rt else []
    page = lookup(
        records,
        attributes=self._get_param("LookupAttributes"),
        start=_time(self._get_param("StartTime")),
        end=_time(self._get_param("EndTime")),
        max_results=self._get_param("MaxResults"),
        next_token=self._get_param("NextToken"),
    )
    return json.dumps(page)


def install() -> None:
    if _originals:
        return
    _originals["lookup_events"] = CloudTrailResponse.__dict__.get("lookup_events")
    CloudTrailResponse.lookup_events = _response_lookup_events  # type: ignore[attr-defined]


def uninstall() -> None:
    if "lookup_events" not in _originals:
        return
    original = _originals.pop("lookup_events")
    if original is None:
        del CloudTrailResponse.lookup_events  # type: ignore[attr-defined]
    else:
        CloudTrailResponse.lookup_events = original  # type: ignore[attr-defined]
