"""Publishing alerts to the guard's SNS topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef


def publish(
    client: SNSClient,
    topic_arn: str,
    *,
    subject: str,
    message: str,
    attributes: Mapping[str, str],
) -> str:
    """Publish one message; string attributes let subscribers filter (e.g. on `decision`)."""
    message_attributes: dict[str, MessageAttributeValueTypeDef] = {
        key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
    }
    response = client.publish(
        TopicArn=topic_arn,
        Subject=subject,
        Message=message,
        MessageAttributes=message_attributes,
    )
    return str(response.get("MessageId", ""))
