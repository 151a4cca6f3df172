"""Sending to the guard's dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def send_json(client: SQSClient, queue_url: str, body: Mapping[str, Any], *, kind: str) -> str:
    """Send `body` as JSON with a `kind` attribute (filters and alarms read it); the message id."""
    response = client.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(body, sort_keys=True, default=str),
        MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}},
    )
    return str(response.get("MessageId", ""))
