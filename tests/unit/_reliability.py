"""Helpers for the reliability tests: an idempotency table, a dead-letter queue, a record of every
AWS call made in-process, fault injection, and endpoints caught mid-change (moto's endpoints are
InService at once)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.awsrequest import AWSResponse
from conftest import ACCOUNT, REGION

MUTATING_PREFIXES = (
    "Attach",
    "Detach",
    "Create",
    "Update",
    "Delete",
    "Put",
    "Add",
    "Remove",
    "Send",
    "Publish",
    "Invoke",
    "Tag",
    "Untag",
)
"""Operations that change something (DynamoDB's idempotency records aside)."""


@dataclass
class CallLog:
    """Every botocore API call made in-process, as (service, operation)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def clear(self) -> None:
        self.calls.clear()

    def operations(self, service: str | None = None) -> list[str]:
        return [op for svc, op in self.calls if service is None or svc == service]

    def count(self, operation: str) -> int:
        return sum(1 for _, op in self.calls if op == operation)

    def mutating(self, *, ignore: tuple[str, ...] = ("dynamodb",)) -> list[tuple[str, str]]:
        return [
            (svc, op)
            for svc, op in self.calls
            if svc not in ignore and op.startswith(MUTATING_PREFIXES)
        ]

    def per_operation(self) -> Counter[str]:
        return Counter(f"{svc}.{op}" for svc, op in self.calls)


@contextmanager
def recording_calls() -> Iterator[CallLog]:
    log = CallLog()
    original = botocore.client.BaseClient._make_api_call

    def recorder(self: Any, operation_name: str, api_params: Any) -> Any:
        log.calls.append((self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = recorder  # type: ignore[method-assign]
    try:
        yield log
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def idempotency_table(monkeypatch: pytest.MonkeyPatch, name: str = "idempotency") -> str:
    """The table the template creates, in moto; IDEMPOTENCY_TABLE points at it."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    monkeypatch.setenv("IDEMPOTENCY_TABLE", name)
    return name


@dataclass
class DeadLetters:
    url: str
    arn: str

    def read(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


def dead_letter_queue(monkeypatch: pytest.MonkeyPatch) -> DeadLetters:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="ssm-guard-dead-letters")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", url)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_ARN", arn)
    return DeadLetters(url, arn)


ENFORCER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ssm-guard-enforcer"


def retries_configured(monkeypatch: pytest.MonkeyPatch, max_age_minutes: int = 60) -> str:
    """A Scheduler role and target, as the template sets them; returns the target ARN."""
    monkeypatch.setenv("RECHECK_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/ssm-guard-scheduler")
    monkeypatch.setenv("RECHECK_FUNCTION_ARN", ENFORCER_ARN)
    monkeypatch.setenv("RETRY_MAX_AGE_MINUTES", str(max_age_minutes))
    return ENFORCER_ARN


def scheduled_retries() -> list[dict[str, Any]]:
    """Every one-time schedule in moto's default group: name, expression and target input."""
    scheduler = boto3.client("scheduler")
    found = []
    for summary in scheduler.list_schedules()["Schedules"]:
        schedule = scheduler.get_schedule(Name=summary["Name"])
        found.append(
            {
                "name": schedule["Name"],
                "at": schedule["ScheduleExpression"],
                "target": schedule["Target"]["Arn"],
                "event": json.loads(schedule["Target"]["Input"]),
                "after": schedule.get("ActionAfterCompletion"),
            }
        )
    return found


def fire(schedule: dict[str, Any]) -> dict[str, Any]:
    """What Scheduler does when the time comes: delete the schedule, hand over its event."""
    boto3.client("scheduler").delete_schedule(Name=schedule["name"])
    return dict(schedule["event"])


def set_status(name: str, status: str) -> None:
    """Put a moto endpoint in any status (moto's are InService at once)."""
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends[ACCOUNT][REGION].endpoints[name].endpoint_status = status


def state_change_event(
    name: str, status: str = "IN_SERVICE", *, modified_ms: int = 1764770797000, **detail: Any
) -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name.lower()}"
    return {
        "version": "0",
        "id": f"event-{name}-{status}-{modified_ms}",
        "detail-type": "SageMaker Endpoint State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-12-03T14:06:37Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": f"{name}-config",
            "EndpointStatus": status,
            "LastModifiedTime": modified_ms,
            **detail,
        },
    }


class LambdaContext:
    """The parts of a Lambda context the guard reads."""

    def __init__(self, remaining_ms: int = 300_000, arn: str = ENFORCER_ARN) -> None:
        self.invoked_function_arn = arn
        self.function_name = arn.rsplit(":", 1)[-1]
        self.aws_request_id = "test-request"
        self._remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining


# -- fault injection ------------------------------------------------------------------------


def _error_response(protocol: str, code: str, message: str, status: int) -> AWSResponse:
    if protocol in ("query", "ec2"):
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>x</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    else:
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}

    class _Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    return AWSResponse("https://fault.invalid", status, headers, _Raw())


QUERY_SERVICES = frozenset({"iam", "sts"})


@dataclass
class Faults:
    """Answers chosen operations with an error before moto sees them, `times` times each.
    Errors go through botocore's retry logic like a real answer would."""

    plan: dict[str, list[Any]] = field(default_factory=dict)
    fired: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        operation: str,
        code: str = "ThrottlingException",
        message: str = "Rate exceeded",
        *,
        status: int = 400,
        times: int = 1,
        action: Callable[[], None] | None = None,
    ) -> None:
        self.plan.setdefault(operation, []).extend([(code, message, status, action)] * times)

    def handler(self, event_name: str, request: Any, **_: Any) -> AWSResponse | None:
        # before-send.<service>.<Operation>. botocore runs every before-send handler, moto's
        # after this one: an injected error sends the request to a host moto does not serve.
        _, service, operation = event_name.split(".", 2)
        queue = self.plan.get(operation)
        if not queue:
            return None
        code, message, status, action = queue.pop(0)
        self.fired[operation] += 1
        if action is not None:
            action()
            return None
        request.url = "https://fault.invalid/"
        protocol = "query" if service in QUERY_SERVICES else "json"
        return _error_response(protocol, code, message, status)


@contextmanager
def injected(faults: Faults) -> Iterator[Faults]:
    """Put `faults` in front of every client created meanwhile or before (moto's own before-send
    handler answers otherwise), and make botocore's retry sleeps instant."""
    import botocore.endpoint
    import botocore.retries.bucket

    original_init = botocore.client.BaseClient.__init__
    original_sleep = botocore.endpoint.time.sleep
    registered: list[Any] = []

    def hook(client: Any) -> None:
        client.meta.events.register_first("before-send", faults.handler)
        registered.append(client)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        hook(self)

    original_wait = botocore.retries.bucket.TokenBucket._sleep_amount
    botocore.client.BaseClient.__init__ = init  # type: ignore[method-assign]
    botocore.endpoint.time.sleep = lambda _seconds: None
    # The adaptive mode's client-side rate limiter waits on a condition, not on sleep.
    bucket = botocore.retries.bucket.TokenBucket
    bucket._sleep_amount = lambda _self, _amount: 0  # type: ignore[method-assign]
    try:
        yield faults
    finally:
        botocore.client.BaseClient.__init__ = original_init  # type: ignore[method-assign]
        botocore.endpoint.time.sleep = original_sleep
        bucket._sleep_amount = original_wait  # type: ignore[method-assign]
        for client in registered:
            client.meta.events.unregister("before-send", faults.handler)
