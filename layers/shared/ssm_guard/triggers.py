"""The guardrail's other triggers, read from their events. Pure: no AWS here.

- `AWS API Call via CloudTrail` for SageMaker `AddTags` / `DeleteTags`: tags set after creation
  can make an endpoint production or grant / revoke an exception (needs a CloudTrail trail).
- The guard's own re-check event, with which a one-time EventBridge Scheduler schedule invokes
  the enforcer at an exception's expiry, at an SSM age limit, or when a busy endpoint must be
  tried again.

Like every event, these only say which endpoint to look at; the decision reads live state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssm_guard.events import CLOUDTRAIL_API_CALL, MalformedEventError, envelope_and_detail
from ssm_guard.names import InvalidNameError, validate_name

GUARD_SOURCE = "sagemaker-ssm-guard"
RECHECK_DETAIL_TYPE = "SageMaker SSM Guard Recheck"
TAG_CALLS = frozenset({"AddTags", "DeleteTags"})
SAGEMAKER_EVENT_SOURCE = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Trigger:
    """Which endpoint to evaluate and why. `endpoint_name` is None when only the ARN is known
    (CloudTrail gives the ARN, whose name part AWS lower-cases: aws-facts 1.2)."""

    why: str
    endpoint_arn: str | None = None
    endpoint_name: str | None = None
    ignore: str | None = None
    """Set when the event is a guardrail trigger that needs no evaluation, with the reason."""


def _text(mapping: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = mapping.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _detail(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return envelope_and_detail(event)[1]


def _tag_call(detail: Mapping[str, Any]) -> Trigger:
    call = str(detail.get("eventName"))
    if detail.get("errorCode"):
        return Trigger(why=call, ignore="the call failed, so no tag changed")
    params = detail.get("requestParameters")
    if not isinstance(params, Mapping):
        raise MalformedEventError("the CloudTrail event has no requestParameters")
    arn = _text(params, "resourceArn", "ResourceArn")
    if arn is None:
        raise MalformedEventError("the CloudTrail event names no resourceArn")
    if not arn.startswith("arn:") or ":sagemaker:" not in arn:
        raise MalformedEventError("resourceArn is not a SageMaker ARN")
    if ":endpoint/" not in arn:
        return Trigger(why=call, endpoint_arn=arn, ignore="the tags changed on no endpoint")
    return Trigger(why=call, endpoint_arn=arn)


def _recheck(detail: Mapping[str, Any]) -> Trigger:
    try:
        name = validate_name(detail.get("EndpointName"))
    except InvalidNameError as exc:
        raise MalformedEventError(str(exc)) from exc
    arn = _text(detail, "EndpointArn")
    why = _text(detail, "Reason") or "recheck"
    return Trigger(why=f"recheck:{why}", endpoint_arn=arn, endpoint_name=name)


def parse_guardrail_trigger(event: object) -> Trigger | None:
    """A Trigger for a CloudTrail tag call or a re-check event; None for any other event (the
    caller reads those its own way). Raise MalformedEventError for a broken trigger event."""
    if not isinstance(event, Mapping):
        return None
    source = event.get("source")
    detail_type = event.get("detail-type")
    if source == GUARD_SOURCE:
        if detail_type != RECHECK_DETAIL_TYPE:
            # The guard's own alerts share the source: never act on them (no loop).
            return Trigger(why=str(detail_type), ignore="the guard's own alert")
        return _recheck(_detail(event))
    if source == "aws.sagemaker" and detail_type == CLOUDTRAIL_API_CALL:
        detail = _detail(event)
        if detail.get("eventSource") != SAGEMAKER_EVENT_SOURCE:
            raise MalformedEventError("the CloudTrail event is not from SageMaker")
        if detail.get("eventName") not in TAG_CALLS:
            return Trigger(why=str(detail.get("eventName")), ignore="not a tag change")
        return _tag_call(detail)
    return None


def recheck_event(endpoint_name: str, endpoint_arn: str, reason: str) -> dict[str, Any]:
    """The event a re-check schedule invokes the enforcer with (EventBridge-shaped, so logs and
    `ssm-guard local invoke` treat it like any other)."""
    return {
        "version": "0",
        "source": GUARD_SOURCE,
        "detail-type": RECHECK_DETAIL_TYPE,
        "resources": [endpoint_arn],
        "detail": {"EndpointName": endpoint_name, "EndpointArn": endpoint_arn, "Reason": reason},
    }
