"""Invoking a Lambda function asynchronously (the sweep hands its next page to a new run)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


def invoke_async(client: LambdaClient, function_arn: str, payload: Mapping[str, Any]) -> None:
    """Queue one asynchronous invocation (Lambda retries it and sends failures to the function's
    OnFailure destination, like any asynchronous event)."""
    client.invoke(
        FunctionName=function_arn,
        InvocationType="Event",
        Payload=json.dumps(payload, sort_keys=True).encode(),
    )
