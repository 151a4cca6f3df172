"""The work behind each Lambda handler, kept here so `functions/*/app.py` stay ten lines."""

from __future__ import annotations

from typing import Any

from ssm_guard.decisions import Kind
from ssm_guard.enforce import Guard, Outcome, evaluate_endpoint, record
from ssm_guard.events import MalformedEventError, parse_endpoint_event
from ssm_guard.observability import count, logger


def on_endpoint_state_change(event: Any, guard: Guard | None = None) -> dict[str, Any]:
    """React to `SageMaker Endpoint State Change`: read the endpoint live and enforce.

    A malformed event is logged and answered, never raised: a Lambda retry could not fix it.
    """
    try:
        parsed = parse_endpoint_event(event)
    except MalformedEventError as exc:
        logger.warning("event rejected", extra={"reason": str(exc)})
        count("MalformedEvent")
        return {"decision": str(Kind.MALFORMED_EVENT), "reason": str(exc)}
    logger.append_keys(endpoint_name=parsed.endpoint_name)
    logger.info(
        "event received",
        extra={"event_status": parsed.status, "event_id": parsed.event_id},
    )
    guard = guard or Guard.from_env()
    outcome: Outcome = evaluate_endpoint(guard, parsed.endpoint_name)
    record(outcome)
    return outcome.as_dict()
