"""STS: the member role the central guard acts through in each member account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

# The shortest session STS grants; enough for the longest Lambda run (15 minutes).
SESSION_SECONDS = 3600


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


def assume_role(client: STSClient, role_arn: str, session_name: str) -> TemporaryCredentials:
    """Credentials of `role_arn`; raises ClientError (AccessDenied) when the role is missing or
    does not trust the caller: AWS answers both the same way."""
    response = client.assume_role(
        RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=SESSION_SECONDS
    )
    credentials = response["Credentials"]
    return TemporaryCredentials(
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
        expiration=credentials["Expiration"],
    )


def caller_account(client: STSClient) -> str:
    return str(client.get_caller_identity()["Account"])
