"""Early warning: an endpoint config created with SSM access on and tagged production.

Creating a config changes nothing yet (an endpoint must be created or updated onto it), so the
guard only alerts; the endpoint's own events bring the revert if it is ever deployed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ssm_guard import alerts
from ssm_guard.accounts import alert_refusal, guard_for_event, refused
from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.aws.errors import is_not_found
from ssm_guard.clone import CREATED_BY_TAG, CREATED_BY_VALUE
from ssm_guard.decisions import Kind, is_production
from ssm_guard.endpoint import variants_of
from ssm_guard.enforce import Guard
from ssm_guard.events import ENDPOINT_CONFIG_STATE_CHANGE, MalformedEventError
from ssm_guard.exceptions import iso
from ssm_guard.names import InvalidNameError, validate_name
from ssm_guard.observability import count, logger


def config_name_of(event: object) -> str:
    """The config a `SageMaker Endpoint Config State Change` event names; MalformedEventError
    for anything else."""
    if not isinstance(event, Mapping):
        raise MalformedEventError("the event is not a JSON object")
    if event.get("source", "aws.sagemaker") != "aws.sagemaker":
        raise MalformedEventError("the event is not from aws.sagemaker")
    if event.get("detail-type", ENDPOINT_CONFIG_STATE_CHANGE) != ENDPOINT_CONFIG_STATE_CHANGE:
        raise MalformedEventError("the event is not an endpoint config state change")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("the event has no detail object")
    try:
        return validate_name(detail.get("EndpointConfigName"), "endpoint config name")
    except InvalidNameError as exc:
        raise MalformedEventError(str(exc)) from exc


def _answer(decision: Kind, name: str, reason: str, **extra: Any) -> dict[str, Any]:
    logger.info(
        "endpoint config evaluated",
        extra={"config_name": name, "decision": str(decision), "reason": reason},
    )
    count("Decision_" + str(decision).replace("-", "_"))
    return {"decision": str(decision), "config_name": name, "reason": reason, **extra}


def on_config_state_change(event: Any, guard: Guard | None = None) -> dict[str, Any]:
    """Read the config live (the event is only a trigger); alert when it has SSM access on a
    variant and its own tags mark it production. Never changes anything."""
    try:
        name = config_name_of(event)
    except MalformedEventError as exc:
        logger.warning("event rejected", extra={"reason": str(exc)})
        count("MalformedEvent")
        return {"decision": str(Kind.MALFORMED_EVENT), "reason": str(exc)}
    refusal = refused(event)
    if refusal is not None:
        return alert_refusal(refusal)
    guard = guard or guard_for_event(event)
    try:
        config = sm_api.describe_endpoint_config(guard.sagemaker, name)
    except ClientError as exc:
        if is_not_found(exc):
            return _answer(Kind.IGNORED, name, "the config no longer exists")
        raise
    ssm = [v.name for v in variants_of(config) if v.ssm_enabled]
    if not ssm:
        return _answer(Kind.NO_SSM, name, "no variant has SSM access on")
    arn = str(config.get("EndpointConfigArn", ""))
    tags = sm_api.list_tags(guard.sagemaker, arn) if arn else {}
    if not is_production(tags, guard.settings):
        return _answer(Kind.COMPLIANT, name, "SSM access is on, the config is not production")
    by_guard = tags.get(CREATED_BY_TAG) == CREATED_BY_VALUE
    reason = (
        "a config with SSM access on is tagged production; an endpoint updated to it loses "
        "SSM access again unless it carries a valid exception"
        + (" (made by `ssm-guard enable`)" if by_guard else "")
    )
    parts = alerts.arn_parts(arn)
    alert = alerts.Alert(
        decision=str(Kind.CONFIG_EARLY_WARNING),
        subject=alerts.subject_for(Kind.CONFIG_EARLY_WARNING, name, action="none"),
        endpoint_name="-",
        endpoint_arn=arn,
        account=parts.account,
        region=parts.region,
        action="none (early warning: a config alone changes no endpoint)",
        reason=reason,
        mode=guard.settings.guardrail_mode,
        variants=tuple(ssm),
        new_config=name,
        console_url=alerts.console_url(arn, name, kind="endpointConfig"),
        time=iso(datetime.now(UTC)),
    )
    sent = alerts.send(guard, alert)
    return _answer(Kind.CONFIG_EARLY_WARNING, name, reason, ssm_variants=ssm, alert=sent)
