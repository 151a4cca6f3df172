"""Helpers for the discovery tests: SSM log streams written as SageMaker writes them, endpoints
with SSM on, and counting the AWS calls a guard makes. Used inside the `account` fixture (moto)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3

from ssm_guard.targets import build_target_id

PREFIX = "/sagemaker-ssm-guard/targets"


def instance_id(n: int) -> str:
    """An EC2-style instance ID: `i-` and 17 hex digits."""
    return f"i-{n:017x}"


def write_ssm_stream(
    endpoint: str,
    variant: str,
    instance: str,
    containers: Iterable[str | None],
    *,
    at: datetime | None = None,
    group: str | None = None,
    list_targets: bool = True,
) -> None:
    """Write `VARIANT/INSTANCE/ssm` as SageMaker does: target IDs first, then the agent's lines,
    each prefixed `[sagemaker ssm logs][CONTAINER]`; `at` sets when the stream was written."""
    logs = boto3.client("logs")
    group = group or f"/aws/sagemaker/Endpoints/{endpoint}"
    when = at or datetime.now(UTC)
    lines = []
    for container in containers:
        name = container or "container_0"
        if list_targets:
            target = build_target_id(endpoint, variant, instance, container)
            lines.append(f"[sagemaker ssm logs][{name}] SSM target id: {target}")
        lines.append(f"[sagemaker ssm logs][{name}] Starting Amazon SSM Agent")
    # moto stamps creation and ingestion with its clock; move it to `at`.
    with mock.patch("moto.logs.models.utcnow", return_value=when.replace(tzinfo=None)):
        if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
            logs.create_log_group(logGroupName=group)
        stream = f"{variant}/{instance}/ssm"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        millis = int(when.timestamp() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": millis + i, "message": line} for i, line in enumerate(lines)],
        )


def ssm_endpoint(
    account: Any, name: str, *, containers: int = 1, instances: int = 1, **kw: Any
) -> None:
    role = account.role(f"{name}-role")
    account.model(f"{name}-model", role, containers=containers)
    account.endpoint(
        name,
        [
            {
                "VariantName": "blue",
                "ModelName": f"{name}-model",
                "EnableSSMAccess": True,
                "InitialInstanceCount": instances,
                **kw,
            }
        ],
    )


def published_value(name: str) -> dict[str, Any]:
    ssm = boto3.client("ssm")
    return json.loads(ssm.get_parameter(Name=f"{PREFIX}/{name}")["Parameter"]["Value"])


def calls(guard: Any, service: str) -> Counter[str]:
    """Count the API calls a guard's client makes from now on."""
    counter: Counter[str] = Counter()
    client = guard.sagemaker if service == "sagemaker" else guard.client(service)

    def count(model: Any, **_: Any) -> None:
        counter[model.name] += 1

    client.meta.events.register(f"before-call.{client.meta.service_model.service_name}", count)
    return counter
