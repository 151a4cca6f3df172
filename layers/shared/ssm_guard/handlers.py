"""The work behind each Lambda handler, kept here so `functions/*/app.py` stay ten lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from ssm_guard import alerts, retry
from ssm_guard.accounts import alert_refusal, guard_for_event, refused
from ssm_guard.decisions import Kind
from ssm_guard.endpoint import EndpointSnapshot
from ssm_guard.enforce import (
    Guard,
    Outcome,
    enforce_snapshot,
    evaluate_endpoint,
    may_change,
    read_live,
    record,
)
from ssm_guard.events import EndpointEvent, MalformedEventError, parse_endpoint_event
from ssm_guard.guardrail import resolve_endpoint_name
from ssm_guard.idempotency import run_once
from ssm_guard.observability import count, logger
from ssm_guard.triggers import parse_guardrail_trigger


def on_endpoint_state_change(
    event: Any, guard: Guard | None = None, context: Any = None
) -> dict[str, Any]:
    """React to `SageMaker Endpoint State Change`: read the endpoint live and enforce.

    A malformed event is logged and answered, never raised: a Lambda retry could not fix it.
    Copies of one state change change things once (`run_once`, see `_evaluate_event`); a busy
    endpoint is retried and a permanent failure reported once (`retry`). In an
    organization-wide deployment, an event from an account the guard may not act in changes
    nothing and is alerted (`accounts`).
    """
    refusal = refused(event)
    if refusal is not None:
        return alert_refusal(refusal)
    routed = on_guardrail_trigger(event, guard)
    if routed is not None:
        return routed
    try:
        parsed = parse_endpoint_event(event)
        key = retry.work_key(event, parsed)
    except MalformedEventError as exc:
        logger.warning("event rejected", extra={"reason": str(exc)})
        count("MalformedEvent")
        return {"decision": str(Kind.MALFORMED_EVENT), "reason": str(exc)}
    logger.append_keys(endpoint_name=parsed.endpoint_name)
    logger.info(
        "event received",
        extra={"event_status": parsed.status, "event_id": parsed.event_id, "work_key": key},
    )
    return _evaluate_event(event, parsed, key, guard, context)


def _evaluate_event(
    event: Any, parsed: EndpointEvent, key: str, guard: Guard | None, context: Any
) -> dict[str, Any]:
    """Read, decide, and claim the work (`run_once`) only when the decision changes something.

    Most events change nothing (no SSM access, not in service): they cost the reads alone, and
    a copy of them is simply decided again. An in-service endpoint with SSM access on may be
    attached, reverted or alerted; a busy one gets a retry scheduled; a failure is reported:
    that work is claimed under the state change's key, so concurrent and later copies of the
    event answer with the first copy's result instead of doing it again.
    """
    acting = guard or guard_for_event(event)

    def finish(outcome: Outcome) -> dict[str, Any]:
        record(outcome)
        return outcome.as_dict()

    def failed(exc: ClientError) -> dict[str, Any]:
        return finish(retry.on_failure(acting, exc, endpoint=parsed, event=event, context=context))

    def follow_up(outcome: Outcome) -> dict[str, Any]:
        return finish(
            retry.follow_up(acting, outcome, endpoint=parsed, event=event, context=context)
        )

    def act(snapshot: EndpointSnapshot) -> dict[str, Any]:
        try:
            outcome = enforce_snapshot(acting, snapshot, tags_fresh=True)
        except ClientError as exc:
            return failed(exc)
        return follow_up(outcome)

    def report_unreadable(outcome: Outcome) -> dict[str, Any]:
        alerts.send_unreadable(acting, outcome, datetime.now(UTC))
        return finish(outcome)

    try:
        found = read_live(acting, parsed.endpoint_name)
    except ClientError as exc:
        if retry.classify(exc) is retry.Failure.TRANSIENT:
            return failed(exc)  # raised again for Lambda to retry: nothing to claim
        return run_once(key, partial(failed, exc), context=context)
    if isinstance(found, EndpointSnapshot) and may_change(found):
        return run_once(key, partial(act, found), context=context)
    if isinstance(found, Outcome) and found.decision is Kind.ENDPOINT_UNREADABLE:
        return run_once(key, partial(report_unreadable, found), context=context)
    outcome = found if isinstance(found, Outcome) else enforce_snapshot(acting, found)
    if retry.needs_retry(outcome):
        return run_once(key, partial(follow_up, outcome), context=context)
    return finish(outcome)


def on_guardrail_trigger(event: Any, guard: Guard | None = None) -> dict[str, Any] | None:
    """The enforcer's other triggers: CloudTrail `AddTags`/`DeleteTags` on an endpoint and the
    guard's scheduled re-checks lead to the same evaluation. None for any other event."""
    try:
        trigger = parse_guardrail_trigger(event)
    except MalformedEventError as exc:
        logger.warning("event rejected", extra={"reason": str(exc)})
        count("MalformedEvent")
        return {"decision": str(Kind.MALFORMED_EVENT), "reason": str(exc)}
    if trigger is None:
        return None
    if trigger.ignore:
        logger.info("event ignored", extra={"trigger": trigger.why, "reason": trigger.ignore})
        return {"decision": str(Kind.IGNORED), "reason": trigger.ignore}
    guard = guard or guard_for_event(event)
    name = trigger.endpoint_name
    if name is None and trigger.endpoint_arn:
        name = resolve_endpoint_name(guard, trigger.endpoint_arn)
    if name is None:
        logger.info("event ignored", extra={"trigger": trigger.why, "reason": "endpoint gone"})
        return {"decision": str(Kind.ENDPOINT_GONE), "reason": "no endpoint has that ARN"}
    logger.append_keys(endpoint_name=name)
    logger.info("event received", extra={"trigger": trigger.why})
    arn = trigger.endpoint_arn or ""
    endpoint = EndpointEvent(endpoint_name=name, endpoint_arn=arn, status="Unknown")
    try:
        outcome: Outcome = evaluate_endpoint(guard, name)
    except ClientError as exc:
        outcome = retry.on_failure(guard, exc, endpoint=endpoint, event=event)
    else:
        endpoint = replace(endpoint, status=outcome.status or "Unknown")
        outcome = retry.follow_up(guard, outcome, endpoint=endpoint, event=event)
    record(outcome)
    return outcome.as_dict()
