"""Targets: publish the SSM target IDs of SSM-enabled endpoints when they come into service, are
deleted, or on the schedule."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ssm_guard.discovery import on_targets_trigger
from ssm_guard.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return on_targets_trigger(event)
