"""Sweep: on a schedule, evaluate every endpoint as its events would have, then clean up."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ssm_guard.observability import logger, metrics
from ssm_guard.org_sweep import on_org_sweep


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return on_org_sweep(event, context)
