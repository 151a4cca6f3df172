"""Reading EventBridge events about SageMaker endpoints.

An event is only a trigger: it names the endpoint and the status it reached. Everything the guard
decides on (EnableSSMAccess, roles, tags) is read live from the API afterwards, because events
carry no EnableSSMAccess nor roles, may be duplicated, and arrive late or out of order
(aws-facts 1.1, 1.2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ssm_guard.names import InvalidNameError, validate_name

ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
ENDPOINT_CONFIG_STATE_CHANGE = "SageMaker Endpoint Config State Change"
CLOUDTRAIL_API_CALL = "AWS API Call via CloudTrail"
SCHEDULED_EVENT = "Scheduled Event"

# Events say IN_SERVICE; the API says InService (aws-facts 1.2). DELETED exists only in events.
_STATUS_FROM_EVENT = {
    "OUT_OF_SERVICE": "OutOfService",
    "CREATING": "Creating",
    "UPDATING": "Updating",
    "SYSTEM_UPDATING": "SystemUpdating",
    "ROLLING_BACK": "RollingBack",
    "IN_SERVICE": "InService",
    "DELETING": "Deleting",
    "FAILED": "Failed",
    "UPDATE_ROLLBACK_FAILED": "UpdateRollbackFailed",
    "DELETED": "Deleted",
}
API_STATUSES = frozenset(_STATUS_FROM_EVENT.values())


class MalformedEventError(ValueError):
    """An event that cannot be about a SageMaker endpoint. It is logged and dropped, never
    retried: a retry could not make it well-formed."""


def normalize_status(raw: object) -> str:
    """`IN_SERVICE`, `in_service` and `InService` all become `InService`.

    An unknown status is returned unchanged, so a new AWS status is seen, not mistaken.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise MalformedEventError("EndpointStatus is missing or not a string")
    text = raw.strip()
    if text in API_STATUSES:
        return text
    return _STATUS_FROM_EVENT.get(text.upper().replace("-", "_"), text)


def normalize_tags(raw: object) -> dict[str, str]:
    """Tags arrive as a flat map in real events, as a list of {key, value} in the schema
    registry binding and in the API (`Key`/`Value`); accept all three."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        tags: dict[str, str] = {}
        for item in raw:
            if not isinstance(item, Mapping):
                raise MalformedEventError("a tag in the list is not an object")
            key = item.get("Key", item.get("key"))
            value = item.get("Value", item.get("value", ""))
            if not isinstance(key, str):
                raise MalformedEventError("a tag in the list has no key")
            tags[key] = "" if value is None else str(value)
        return tags
    raise MalformedEventError("Tags is neither a map nor a list")


def epoch_millis(raw: object) -> int | None:
    """Event times are epoch milliseconds (int or float); accept ISO-8601 strings too."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip()
        try:
            return int(float(text))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedEventError("a time field is neither epoch ms nor ISO-8601") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise MalformedEventError("a time field has the wrong type")


def envelope_and_detail(event: object) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The event and its `detail` object; MalformedEventError when either is not an object."""
    if not isinstance(event, Mapping):
        raise MalformedEventError("the event is not a JSON object")
    detail = event.get("detail")
    if isinstance(detail, str):
        # NOTE: some replay tools deliver detail as a JSON string; real EventBridge never does.
        try:
            detail = json.loads(detail)
        except ValueError as exc:
            raise MalformedEventError("detail is a string that is not JSON") from exc
    if not isinstance(detail, Mapping):
        raise MalformedEventError("the event has no detail object")
    return event, detail


@dataclass(frozen=True)
class EndpointEvent:
    """What a `SageMaker Endpoint State Change` event says, normalized."""

    endpoint_name: str
    endpoint_arn: str
    status: str
    config_name: str | None = None
    last_modified_ms: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    event_id: str | None = None
    account: str | None = None
    region: str | None = None

    @property
    def idempotency_key(self) -> str:
        """Duplicates of one state change carry different event ids; the same endpoint, status
        and last-modified time mean the same work (aws-facts 7)."""
        return f"{self.endpoint_arn}|{self.status}|{self.last_modified_ms}"


def parse_endpoint_event(event: object) -> EndpointEvent:
    """Read a `SageMaker Endpoint State Change` event; raise MalformedEventError otherwise."""
    envelope, detail = envelope_and_detail(event)
    source = envelope.get("source")
    detail_type = envelope.get("detail-type")
    if source is not None and source != "aws.sagemaker":
        raise MalformedEventError("the event is not from aws.sagemaker")
    if detail_type is not None and detail_type != ENDPOINT_STATE_CHANGE:
        raise MalformedEventError("the event is not an endpoint state change")
    try:
        name = validate_name(detail.get("EndpointName"))
    except InvalidNameError as exc:
        raise MalformedEventError(str(exc)) from exc
    arn = detail.get("EndpointArn")
    if not isinstance(arn, str) or ":endpoint/" not in arn:
        resources = envelope.get("resources")
        arn = resources[0] if isinstance(resources, list) and resources else None
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise MalformedEventError("the event has no endpoint ARN")
    config_name = detail.get("EndpointConfigName")
    return EndpointEvent(
        endpoint_name=name,
        endpoint_arn=arn,
        status=normalize_status(detail.get("EndpointStatus")),
        config_name=config_name if isinstance(config_name, str) else None,
        last_modified_ms=epoch_millis(detail.get("LastModifiedTime")),
        tags=normalize_tags(detail.get("Tags")),
        event_id=envelope.get("id") if isinstance(envelope.get("id"), str) else None,
        account=envelope.get("account") if isinstance(envelope.get("account"), str) else None,
        region=envelope.get("region") if isinstance(envelope.get("region"), str) else None,
    )
