"""Busy endpoints and failures: what is tried again, how, and where it ends.

Three kinds of failure (`classify`):

- transient: throttling, a 5xx, a dropped connection. botocore's adaptive retries come first
  (clients.py); beyond them the handler raises, Lambda retries the asynchronous event twice, and
  its OnFailure destination puts it in the dead-letter queue.
- busy: the endpoint is Creating, Updating, SystemUpdating or RollingBack, or the guardrail
  answered `retry-later` (an UpdateEndpoint refused because one is in progress). The event is
  sent again by a one-time EventBridge Scheduler schedule, with an attempt counter and
  exponential backoff (1, 2, 4, 8, then every 15 minutes), until the endpoint settles or
  RETRY_MAX_AGE_MINUTES pass; then it goes to the dead-letter queue with the reason.
- permanent: AccessDenied, a missing resource, a validation error. Reported once (an ERROR log
  line, a metric and a dead-letter message with the reason); never retried.

A CloudWatch alarm fires on the dead-letter queue (template.yaml): nothing is dropped silently.

Why Scheduler: Lambda retries an asynchronous event at most twice, minutes apart, while an
endpoint update often takes 10 minutes and can take an hour; an SQS delay is capped at 15
minutes. A one-time schedule can wait any time, deletes itself after it fires, and its name is
derived from the event and the attempt, so concurrent copies of one retry create one schedule.

For the guardrail and other callers: return an outcome whose decision is `retry-later` from the
evaluation, and the handler schedules the retry (`follow_up`); code that has no event at hand
calls `retry_later(guard, endpoint=..., reason=...)`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ssm_guard.aws import scheduler as scheduler_api
from ssm_guard.aws import sqs as sqs_api
from ssm_guard.aws.errors import (
    error_code,
    error_message,
    is_access_denied,
    is_in_progress,
    is_not_found,
    is_throttling,
)
from ssm_guard.decisions import Kind
from ssm_guard.enforce import Guard, Outcome
from ssm_guard.events import ENDPOINT_STATE_CHANGE, EndpointEvent, MalformedEventError
from ssm_guard.observability import count, logger

RETRY_MARKER = "ssm-guard-retry"
"""Top-level key of a re-sent event: {"attempt": n, "first_seen_ms": t, "reason": "..."}."""
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
RETRY_LATER = "retry-later"
BASE_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 15 * 60
DEFAULT_MAX_AGE_MINUTES = 360
MAX_ATTEMPTS = 1000
"""A sanity bound on a re-sent event's counter; the age limit ends retries long before."""
MAX_SCHEDULE_NAME = 64
TRANSIENT_CODES = frozenset(
    {
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServiceError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ProvisionedThroughputExceededException",
        "ConcurrentModification",
        "ConcurrentModificationException",
    }
)


class Failure(StrEnum):
    TRANSIENT = "transient"
    BUSY = "busy"
    PERMANENT = "permanent"


def classify(exc: BaseException) -> Failure:
    """What a retry can do about `exc`.

    A 4xx answer that is not throttling is the caller's fault: the same call fails the same way
    (AccessDenied, NoSuchEntity, ValidationException). 5xx answers and network errors pass.
    Anything else (a bug) counts as transient: Lambda's two retries bound it, then the
    dead-letter queue holds the event.
    """
    if isinstance(exc, ClientError):
        if is_in_progress(exc):
            return Failure.BUSY
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if is_throttling(exc) or error_code(exc) in TRANSIENT_CODES or status >= 500:
            return Failure.TRANSIENT
        return Failure.PERMANENT
    if isinstance(exc, BotoCoreError):
        return Failure.TRANSIENT
    return Failure.TRANSIENT


def is_not_allowlisted(exc: BaseException) -> bool:
    """SageMaker refuses EnableSSMAccess for accounts AWS Support has not allow-listed (seed page,
    Allowlist). NOTE: the exact message is undocumented; match its likely words."""
    message = error_message(exc).lower()
    return error_code(exc) == "ValidationException" and (
        ("allowlist" in message or "allow list" in message or "allow-list" in message)
        or ("ssm" in message and "not authorized" in message)
    )


def explain(exc: BaseException) -> str:
    """One plain sentence saying what went wrong and what fixes it."""
    operation = getattr(exc, "operation_name", "") or "an AWS call"
    if is_not_allowlisted(exc):
        return (
            "the account is not allow-listed for SSM access to SageMaker endpoints: "
            "ask AWS Support to allow-list it (the SSM access page, Allowlist)"
        )
    if is_access_denied(exc):
        return (
            f"the guard may not call {operation} (AccessDenied): the function's policy in "
            "template.yaml or a permissions boundary / SCP is missing that permission"
        )
    if is_throttling(exc):
        return f"{operation} kept being throttled after every retry"
    if is_not_found(exc):
        return f"a resource {operation} needs no longer exists: {error_message(exc)}"
    if isinstance(exc, ClientError):
        return f"{operation} failed: AWS said {error_code(exc)}: {error_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class RetryConfig:
    """Where retries and dead letters go; from the environment the template sets."""

    role_arn: str = ""
    """The role EventBridge Scheduler invokes the function with (shared with the guardrail's
    re-checks: RECHECK_ROLE_ARN)."""
    target_arn: str = ""
    """The function a retry re-sends the event to; the calling function when empty."""
    dead_letter_url: str = ""
    dead_letter_arn: str = ""
    """Where Scheduler puts a retry it could not deliver."""
    max_age_minutes: int = DEFAULT_MAX_AGE_MINUTES
    name_prefix: str = "ssm-guard"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryConfig:
        env = os.environ if environ is None else environ
        raw_age = env.get("RETRY_MAX_AGE_MINUTES", "").strip()
        return cls(
            role_arn=env.get("RECHECK_ROLE_ARN", ""),
            target_arn=env.get("RECHECK_FUNCTION_ARN", ""),
            dead_letter_url=env.get("DEAD_LETTER_QUEUE_URL", ""),
            dead_letter_arn=env.get("DEAD_LETTER_QUEUE_ARN", ""),
            max_age_minutes=int(raw_age) if raw_age.isdigit() else DEFAULT_MAX_AGE_MINUTES,
            name_prefix=env.get("NAME_PREFIX", "") or "ssm-guard",
        )


@dataclass(frozen=True)
class RetryState:
    """How often an event was tried, and when it was first seen."""

    attempt: int
    first_seen_ms: int
    reason: str = ""


def now_ms() -> int:
    return int(time.time() * 1000)


def read_state(event: object) -> RetryState | None:
    """The retry marker of a re-sent event, None for a first delivery. A marker that is not ours
    (wrong types, absurd values) makes the event malformed: it is dropped, not retried."""
    if not isinstance(event, Mapping) or RETRY_MARKER not in event:
        return None
    marker = event[RETRY_MARKER]
    if not isinstance(marker, Mapping):
        raise MalformedEventError("the retry marker is not an object")
    attempt, first_seen = marker.get("attempt"), marker.get("first_seen_ms")
    if (
        not isinstance(attempt, int)
        or isinstance(attempt, bool)
        or not 1 <= attempt <= MAX_ATTEMPTS
    ):
        raise MalformedEventError("the retry marker's attempt is not a whole number in range")
    if not isinstance(first_seen, int) or isinstance(first_seen, bool) or first_seen <= 0:
        raise MalformedEventError("the retry marker's first_seen_ms is not a positive number")
    reason = marker.get("reason")
    return RetryState(attempt, first_seen, reason if isinstance(reason, str) else "")


def work_key(event: object, parsed: EndpointEvent) -> str:
    """The idempotency key of an event's work: copies of one state change share it; each retry
    attempt is new work (the endpoint was busy when the previous attempt looked)."""
    state = read_state(event)
    return parsed.idempotency_key if state is None else f"{parsed.idempotency_key}|{state.attempt}"


def backoff_seconds(attempt: int) -> int:
    """Delay before `attempt` (1-based): 60, 120, 240, 480, then 900 seconds."""
    return int(min(BASE_DELAY_SECONDS * 2 ** min(attempt - 1, 16), MAX_DELAY_SECONDS))


def next_delay(state: RetryState, at_ms: int, max_age_minutes: int) -> int | None:
    """Seconds until the next attempt, or None when it would come after the maximum age."""
    delay = backoff_seconds(state.attempt + 1)
    age_seconds = (at_ms - state.first_seen_ms) / 1000
    if age_seconds + delay > max_age_minutes * 60:
        return None
    return delay


def needs_retry(outcome: Outcome) -> bool:
    """A busy endpoint, or the guardrail asking to come back later."""
    decision = str(outcome.decision)
    if decision == RETRY_LATER:
        return True
    return decision == str(Kind.NOT_IN_SERVICE) and outcome.status in BUSY_STATUSES


def schedule_name(prefix: str, key: str, attempt: int) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    tail = f"-retry-{digest}-{attempt}"
    return f"{prefix[: MAX_SCHEDULE_NAME - len(tail)]}{tail}"


def retry_event(parsed: EndpointEvent, state: RetryState | None, at: datetime) -> dict[str, Any]:
    """The event a retry sends: the endpoint state change trimmed to what the guard reads (tags
    and variants are read live anyway, and Scheduler caps a target's input at 8 KB). Without a
    state, the event as first seen (for the dead-letter queue)."""
    detail: dict[str, Any] = {
        "EndpointName": parsed.endpoint_name,
        "EndpointArn": parsed.endpoint_arn,
        "EndpointStatus": parsed.status,
        "LastModifiedTime": parsed.last_modified_ms,
    }
    if parsed.config_name:
        detail["EndpointConfigName"] = parsed.config_name
    digest = hashlib.sha256(parsed.idempotency_key.encode()).hexdigest()[:20]
    event: dict[str, Any] = {
        "version": "0",
        "id": f"ssm-guard-retry-{digest}-{state.attempt if state else 0}",
        "detail-type": ENDPOINT_STATE_CHANGE,
        "source": "aws.sagemaker",
        "account": parsed.account,
        "region": parsed.region,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [parsed.endpoint_arn],
        "detail": detail,
    }
    if state is not None:
        event[RETRY_MARKER] = asdict(state)
    return event


@dataclass(frozen=True)
class RetryResult:
    """What became of a request to try again: scheduled, already-scheduled, gave-up (sent to the
    dead-letter queue), not-configured (no Scheduler role: the CLI, a dry run) or not-scheduled
    (no endpoint ARN to send)."""

    state: str
    attempt: int
    reason: str
    at: str | None = None
    schedule: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dead_letter(
    guard: Guard,
    *,
    kind: str,
    reason: str,
    endpoint: EndpointEvent | None,
    details: Mapping[str, Any] | None = None,
    config: RetryConfig | None = None,
) -> bool:
    """Put what a person must look at in the dead-letter queue (its alarm pages them). Returns
    False when no queue is configured; the ERROR log line is written either way."""
    config = config or RetryConfig.from_env()
    body: dict[str, Any] = {
        "source": "sagemaker-ssm-guard",
        "kind": kind,
        "reason": reason,
        "endpoint_name": endpoint.endpoint_name if endpoint else None,
        "endpoint_arn": endpoint.endpoint_arn if endpoint else None,
        "details": dict(details or {}),
    }
    if endpoint is not None:
        body["event"] = retry_event(endpoint, None, datetime.now(UTC))
    logger.error(
        "sent to the dead-letter queue",
        extra={
            "kind": kind,
            "reason": reason,
            "endpoint_name": body["endpoint_name"],
            "queue_configured": bool(config.dead_letter_url),
        },
    )
    count("DeadLetter")
    if guard.dry_run or not config.dead_letter_url:
        return False
    sqs_api.send_json(guard.client("sqs"), config.dead_letter_url, body, kind=kind)
    return True


def retry_later(
    guard: Guard,
    *,
    endpoint: EndpointEvent,
    reason: str,
    event: object = None,
    context: Any = None,
    config: RetryConfig | None = None,
    at_ms: int | None = None,
) -> RetryResult:
    """Send the endpoint's event again after a backoff, or give up into the dead-letter queue
    once the maximum age has passed. `event` is the event being handled (carries the attempt
    counter); leave it None to start counting now."""
    config = config or RetryConfig.from_env()
    at_ms = now_ms() if at_ms is None else at_ms
    state = read_state(event) or RetryState(0, at_ms)
    delay = next_delay(state, at_ms, config.max_age_minutes)
    if delay is None:
        age_minutes = (at_ms - state.first_seen_ms) // 60_000
        why = (
            f"still waiting after {state.attempt} retries over {age_minutes} minutes "
            f"(maximum {config.max_age_minutes}): {reason}"
        )
        dead_letter(
            guard,
            kind="retries-exhausted",
            reason=why,
            endpoint=endpoint,
            details={"attempts": state.attempt, "first_seen_ms": state.first_seen_ms},
            config=config,
        )
        return RetryResult("gave-up", state.attempt, why)
    target = config.target_arn or str(getattr(context, "invoked_function_arn", "") or "")
    if not endpoint.endpoint_arn.startswith("arn:"):
        # A re-sent event without an ARN would be rejected as malformed; the endpoint's next
        # IN_SERVICE event and the sweep still come.
        logger.warning(
            "retry not scheduled: the endpoint's ARN is unknown",
            extra={"endpoint_name": endpoint.endpoint_name, "reason": reason},
        )
        return RetryResult("not-scheduled", state.attempt, reason)
    if guard.dry_run or not (config.role_arn and target):
        logger.warning(
            "retry not scheduled: retries are not configured here",
            extra={"endpoint_name": endpoint.endpoint_name, "reason": reason},
        )
        return RetryResult("not-configured", state.attempt, reason)
    attempt = state.attempt + 1
    at = datetime.fromtimestamp(at_ms / 1000, tz=UTC) + timedelta(seconds=delay)
    name = schedule_name(config.name_prefix, endpoint.idempotency_key, attempt)
    payload = retry_event(endpoint, RetryState(attempt, state.first_seen_ms, reason), at)
    created = scheduler_api.create_one_time_invoke(
        guard.client("scheduler"),
        name=name,
        at=at,
        target_arn=target,
        role_arn=config.role_arn,
        payload=payload,
        dead_letter_arn=config.dead_letter_arn or None,
    )
    logger.info(
        "retry scheduled" if created else "retry already scheduled",
        extra={
            "endpoint_name": endpoint.endpoint_name,
            "attempt": attempt,
            "at": at.isoformat(),
            "reason": reason,
        },
    )
    count("RetryScheduled" if created else "RetryAlreadyScheduled")
    state_name = "scheduled" if created else "already-scheduled"
    return RetryResult(state_name, attempt, reason, at.isoformat(), name)


def follow_up(
    guard: Guard,
    outcome: Outcome,
    *,
    endpoint: EndpointEvent,
    event: object = None,
    context: Any = None,
) -> Outcome:
    """After an evaluation: schedule the retry a busy endpoint needs; note it in the outcome.

    An outcome whose re-check the guardrail already scheduled (`recheck_at`) is left alone.
    Retries exhausted make the outcome `failed`: the dead-letter queue has it, nothing retries.
    """
    if not needs_retry(outcome) or outcome.details.get("recheck_at"):
        return outcome
    reason = outcome.reason or f"the endpoint is {outcome.status}"
    result = retry_later(guard, endpoint=endpoint, reason=reason, event=event, context=context)
    outcome.details["retry"] = result.as_dict()
    if result.state in ("scheduled", "already-scheduled"):
        outcome.details["recheck_at"] = result.at
    elif result.state == "gave-up":
        outcome.decision = Kind.FAILED
        outcome.reason = result.reason
    return outcome


def on_failure(
    guard: Guard,
    exc: Exception,
    *,
    endpoint: EndpointEvent,
    event: object = None,
    context: Any = None,
) -> Outcome:
    """An evaluation raised. Transient: raise again (Lambda retries, then dead-letters). Busy:
    schedule a retry. Permanent: report once and answer, so nothing retries it."""
    failure = classify(exc)
    extra = {
        "endpoint_name": endpoint.endpoint_name,
        "failure": str(failure),
        "error_code": error_code(exc) or type(exc).__name__,
        "operation": getattr(exc, "operation_name", None),
    }
    if failure is Failure.TRANSIENT:
        logger.warning("transient failure: Lambda retries the event", extra=extra)
        count("TransientFailure")
        raise exc
    reason = explain(exc)
    outcome = Outcome(endpoint_name=endpoint.endpoint_name, decision=Kind.FAILED, reason=reason)
    outcome.details = {"error_code": extra["error_code"], "operation": extra["operation"]}
    if failure is Failure.BUSY:
        result = retry_later(guard, endpoint=endpoint, reason=reason, event=event, context=context)
        outcome.details["retry"] = result.as_dict()
        return outcome
    logger.error("evaluation failed permanently: not retried", extra={**extra, "reason": reason})
    count("PermanentFailure")
    dead_letter(guard, kind="permanent-error", reason=reason, endpoint=endpoint, details=extra)
    return outcome
