"""Enforcer: an endpoint reached a new state; attach the session policy where SSM access is on."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ssm_guard.handlers import on_endpoint_state_change
from ssm_guard.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return on_endpoint_state_change(event, context=context)
