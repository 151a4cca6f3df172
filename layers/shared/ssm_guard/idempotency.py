"""Doing one piece of work once, however many copies of its trigger arrive.

SageMaker sends several events for one state change, each with its own event id, and EventBridge
and Lambda deliver at least once (aws-facts 1.1). `run_once` keys the work on what it is about
(for an endpoint event: ARN, status, last-modified time; `events.EndpointEvent.idempotency_key`)
and records it with Powertools Idempotency in the DynamoDB table the template creates:

- the first copy does the work and stores its result;
- a copy arriving while the work runs is skipped (`duplicate-in-progress`): the running
  invocation owns the work, and Lambda retries it should it fail;
- a later copy gets the stored result, logged as a duplicate, and does nothing.

A failed piece of work leaves no record, so a retry of the same event runs it again. Without a
table (the CLI, unit tests) the work simply runs. Powertools is imported on first use: the
module costs nothing at cold start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ssm_guard import clients
from ssm_guard.observability import count, logger

TABLE_ENV = "IDEMPOTENCY_TABLE"
EXPIRES_AFTER_SECONDS = 24 * 60 * 60
"""How long a result answers duplicates. Copies of one state change arrive within minutes; a
replay from an EventBridge archive days later is evaluated afresh, on live state, harmlessly."""
DUPLICATE_IN_PROGRESS = "duplicate-in-progress"

Work = Callable[[], dict[str, Any]]


def _replayed(response: Any, idempotent_data: Any) -> Any:
    """Powertools calls this when it answers with a stored result instead of running the work."""
    logger.info(
        "duplicate event: result of the first copy reused",
        extra={"idempotency_key": getattr(idempotent_data, "idempotency_key", None)},
    )
    count("DuplicateEvent")
    if isinstance(response, dict):
        return {**response, "duplicate": True}
    return response


def run_once(
    key: str,
    work: Work,
    *,
    namespace: str = "endpoint-event",
    context: Any = None,
    table: str | None = None,
) -> dict[str, Any]:
    """Run `work` once per `key` (within `namespace`) across duplicate and concurrent calls.

    `context` is the Lambda context: with it, a record left in progress by an invocation that
    timed out expires with that invocation, and a retry can take the work over.
    """
    table_name = os.environ.get(TABLE_ENV, "") if table is None else table
    if not table_name:
        return work()
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
        response_hook=_replayed,
    )
    if context is not None:
        config.register_lambda_context(context)
    store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=clients.client("dynamodb"))

    def do_work(request: dict[str, str]) -> dict[str, Any]:  # noqa: ARG001 (hashed by Powertools)
        return work()

    once = idempotent_function(
        do_work,
        data_keyword_argument="request",
        persistence_store=store,
        config=config,
        key_prefix=f"ssm-guard.{namespace}",
    )
    try:
        result: dict[str, Any] = once(request={"key": key})
    except IdempotencyAlreadyInProgressError:
        logger.info(
            "duplicate event skipped: the same work is in progress",
            extra={"idempotency_key": key},
        )
        count("DuplicateInProgress")
        return {"decision": DUPLICATE_IN_PROGRESS, "idempotency_key": key, "duplicate": True}
    return result
