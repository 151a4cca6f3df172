"""boto3 clients with the retry policy the guard uses everywhere.

botocore's adaptive retry mode retries throttling (`ThrottlingException`, `Rate exceeded`) and
transient errors with exponential backoff and jitter, and rate-limits the client itself; permanent
errors (AccessDenied, validation, missing resources) are raised at once.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from ssm_guard import __version__

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_ssm import SSMClient

RETRY_ATTEMPTS = 8

_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": RETRY_ATTEMPTS},
    user_agent_extra=f"sagemaker-ssm-guard/{__version__}",
    connect_timeout=5,
    read_timeout=30,
)


@functools.cache
def client(service: str, region: str | None = None) -> Any:
    """A cached client; the endpoint URL, region and credentials come from the standard
    AWS settings (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles), so the same code talks to real
    AWS or to the embedded local AWS."""
    session = boto3.session.Session()
    make: Any = session.client  # a service name in a variable fits none of the typed overloads
    return make(service, region_name=region, config=_CONFIG)


def sagemaker(region: str | None = None) -> SageMakerClient:
    return client("sagemaker", region)  # type: ignore[no-any-return]


def iam() -> IAMClient:
    return client("iam")  # type: ignore[no-any-return]


def ssm(region: str | None = None) -> SSMClient:
    return client("ssm", region)  # type: ignore[no-any-return]


def logs(region: str | None = None) -> CloudWatchLogsClient:
    return client("logs", region)  # type: ignore[no-any-return]


def client_in(session: boto3.session.Session, service: str, region: str) -> Any:
    """A client with the same retry policy for a session of other credentials (the member role
    of another account, in an organization-wide deployment)."""
    make: Any = session.client  # a service name in a variable fits none of the typed overloads
    return make(service, region_name=region, config=_CONFIG)
