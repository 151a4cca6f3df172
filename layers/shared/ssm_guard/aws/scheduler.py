"""One-time EventBridge Scheduler schedules that invoke a function once, then delete themselves.

Used by retries of busy endpoints (retry.py) and by the guardrail's re-checks at an exception's
expiry or an SSM age limit (guardrail.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ssm_guard.aws.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_scheduler.type_defs import TargetTypeDef


def at_expression(moment: datetime) -> str:
    """A one-time expression in UTC: `at(2026-12-03T18:01:00)`."""
    return f"at({moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


def create_one_time_invoke(
    client: EventBridgeSchedulerClient,
    *,
    name: str,
    at: datetime,
    target_arn: str,
    role_arn: str,
    payload: str | Mapping[str, Any],
    group: str = "default",
    dead_letter_arn: str | None = None,
) -> bool:
    """Create a schedule in `group` that invokes `target_arn` with `payload` (the event, JSON) at
    `at` and is deleted after it ran. Return False when a schedule of that name already exists,
    i.e. the same invocation was asked for before."""
    target: TargetTypeDef = {
        "Arn": target_arn,
        "RoleArn": role_arn,
        "Input": payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True),
    }
    if dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": dead_letter_arn}
    try:
        client.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression=at_expression(at),
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target=target,
        )
    except client.exceptions.ClientError as exc:
        if error_code(exc) == "ConflictException":
            return False
        raise
    return True
