"""Pure helpers behind the SageMaker additions: event shapes, fleets, SSM targets, log lines.

No moto here: plain dicts in, plain dicts out, so each rule is unit-tested on its own.

The SSM log stream format is not documented beyond its prefix and "target IDs for all the
containers are listed at the beginning" (aws-facts.md §5). The emulator writes, per container:

    [sagemaker ssm logs][CONTAINER] SSM target id: sagemaker-endpoint:ENDPOINT_VARIANT_INSTANCE

(`..._INSTANCE_CONTAINER` for multi-container models), all target lines first, then agent lines.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

SSM_LOG_PREFIX = "[sagemaker ssm logs]"
SSM_TARGET_LINE = "SSM target id: "
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints/{name}"
ENDPOINT_EVENT = "SageMaker Endpoint State Change"
CONFIG_EVENT = "SageMaker Endpoint Config State Change"
EVENT_SOURCE = "aws.sagemaker"

# Only these two endpoint states accept an update or a delete (aws-facts.md §2.3).
SETTLED_STATUSES = frozenset({"InService", "Failed", "OutOfService"})

# The variant fields SageMaker lists (null when unset) in a config state-change event, after the
# fixture of a real event in awslabs/mlspace (aws-facts.md §1.4).
CONFIG_EVENT_VARIANT_FIELDS = (
    "VariantName",
    "ModelName",
    "InitialInstanceCount",
    "InstanceType",
    "InitialVariantWeight",
    "AcceleratorType",
    "CoreDumpConfig",
    "ServerlessConfig",
    "VolumeSizeInGB",
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
    "EnableSSMAccess",
)
CONFIG_EVENT_FIELDS = (
    "DataCaptureConfig",
    "KmsKeyId",
    "AsyncInferenceConfig",
    "ExplainerConfig",
    "ShadowProductionVariants",
)


def new_instance_id() -> str:
    """An EC2-style instance id: `i-` and 17 hex digits."""
    return "i-" + secrets.token_hex(9)[:17]


def event_status(api_status: str) -> str:
    """`InService` -> `IN_SERVICE`: the casing of EventBridge events (aws-facts.md §1.2)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", api_status).upper()


def epoch_ms(moment: datetime) -> int:
    """moto keeps naive UTC datetimes; events carry epoch milliseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tags_map(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """`[{"Key": k, "Value": v}]` -> `{k: v}`, the shape of `Tags` in real events."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or [] if "Key" in tag}


def variant_summaries(config_variants: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """DescribeEndpoint's ProductionVariants for a fresh deployment of these config variants."""
    summaries = []
    for variant in config_variants:
        summary: dict[str, Any] = {"VariantName": variant["VariantName"]}
        if variant.get("InitialInstanceCount") is not None:
            count = int(variant["InitialInstanceCount"])
            summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = count
        if variant.get("InitialVariantWeight") is not None:
            weight = float(variant["InitialVariantWeight"])
            summary["CurrentWeight"] = summary["DesiredWeight"] = weight
        if variant.get("ServerlessConfig"):
            summary["CurrentServerlessConfig"] = summary["DesiredServerlessConfig"] = variant[
                "ServerlessConfig"
            ]
        summaries.append(summary)
    return summaries


def next_variants(
    current: Sequence[Mapping[str, Any]],
    config_variants: Sequence[Mapping[str, Any]],
    *,
    retain_all: bool,
    exclude: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The endpoint's variants after UpdateEndpoint to `config_variants`.

    With RetainAllVariantProperties, a variant that already exists (same name) keeps its
    current instance count and weight, unless that property is listed in
    ExcludeRetainedVariantProperties; otherwise the new config's initial values apply.
    """
    fresh = variant_summaries(config_variants)
    if not retain_all:
        return fresh
    excluded = set(exclude)
    by_name = {variant["VariantName"]: variant for variant in current}
    for summary in fresh:
        old = by_name.get(summary["VariantName"])
        if old is None:
            continue
        if "DesiredInstanceCount" not in excluded and "DesiredInstanceCount" in old:
            count = old["DesiredInstanceCount"]
            summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = count
        if "DesiredWeight" not in excluded and "DesiredWeight" in old:
            weight = old["DesiredWeight"]
            summary["CurrentWeight"] = summary["DesiredWeight"] = weight
    return fresh


def new_fleet(variants: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Fresh instance ids for every variant, as many as its desired instance count."""
    return {
        variant["VariantName"]: [
            new_instance_id() for _ in range(int(variant.get("DesiredInstanceCount") or 0))
        ]
        for variant in variants
    }


def resized_fleet(
    fleet: Mapping[str, list[str]], variants: Sequence[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """The fleet after a capacity change: keep instances, add or drop to the new count."""
    resized = {}
    for variant in variants:
        name = variant["VariantName"]
        ids = list(fleet.get(name, []))
        wanted = int(variant.get("DesiredInstanceCount") or 0)
        ids = ids[:wanted] + [new_instance_id() for _ in range(max(0, wanted - len(ids)))]
        resized[name] = ids
    return resized


def container_names(model: Mapping[str, Any] | None) -> tuple[list[str], bool]:
    """The container names SSM uses for a model, and whether it is a multi-container model.

    A container is named by its `ContainerHostname`, else `container_N` by position
    (seed page, "Logging with Amazon CloudWatch Logs"). A variant without a model (inference
    components) is treated as one container.
    """
    containers = list((model or {}).get("Containers") or [])
    if len(containers) > 1:
        names = [
            container.get("ContainerHostname") or f"container_{index}"
            for index, container in enumerate(containers)
        ]
        return names, True
    single = containers[0] if containers else (model or {}).get("PrimaryContainer") or {}
    return [single.get("ContainerHostname") or "container_0"], False


def ssm_target_ids(
    endpoint: str, variant: str, instance_id: str, containers: Sequence[str], multi: bool
) -> list[str]:
    """`sagemaker-endpoint:ENDPOINT_VARIANT_INSTANCE[_CONTAINER]` (aws-facts.md §5)."""
    base = f"sagemaker-endpoint:{endpoint}_{variant}_{instance_id}"
    return [f"{base}_{container}" for container in containers] if multi else [base]


def ssm_log_lines(
    endpoint: str, variant: str, instance_id: str, containers: Sequence[str], multi: bool
) -> list[str]:
    """The lines of `VARIANT/INSTANCE/ssm`: every container's target id first, then the agent."""
    targets = ssm_target_ids(endpoint, variant, instance_id, containers, multi)
    lines = [
        f"{SSM_LOG_PREFIX}[{container}] {SSM_TARGET_LINE}{target}"
        for container, target in zip(containers, targets, strict=True)
    ]
    for container in containers:
        managed_id = "mi-" + secrets.token_hex(9)[:17]
        lines += [
            f"{SSM_LOG_PREFIX}[{container}] Starting Amazon SSM Agent",
            f"{SSM_LOG_PREFIX}[{container}] Successfully registered the instance with AWS SSM "
            f"using Managed instance-id: {managed_id}",
            f"{SSM_LOG_PREFIX}[{container}] ssm-agent-worker is running",
        ]
    return lines


def container_log_streams(
    variant: str, instance_id: str, containers: Sequence[str], multi: bool
) -> dict[str, list[str]]:
    """Model container streams: `VARIANT/INSTANCE`, or one per container for several."""
    lines = ["Starting the inference server", "Model server started, listening on 0.0.0.0:8080"]
    if not multi:
        return {f"{variant}/{instance_id}": lines}
    return {f"{variant}/{instance_id}/{container}": lines for container in containers}


def endpoint_event_detail(
    *,
    name: str,
    arn: str,
    config_name: str,
    variants: Sequence[Mapping[str, Any]],
    status: str,
    created: datetime,
    modified: datetime,
    tags: Iterable[Mapping[str, str]] | None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """`detail` of `SageMaker Endpoint State Change`, as the SageMaker guide shows it."""
    detail: dict[str, Any] = {
        "EndpointName": name,
        "EndpointArn": arn,
        "EndpointConfigName": config_name,
        "ProductionVariants": [
            {
                key: variant[key]
                for key in ("DesiredWeight", "DesiredInstanceCount")
                if key in variant
            }
            for variant in variants
        ],
        "EndpointStatus": status,
        "CreationTime": epoch_ms(created),
        "LastModifiedTime": epoch_ms(modified),
        "Tags": tags_map(tags),
    }
    if failure_reason:
        detail["FailureReason"] = failure_reason
    return detail


def config_event_detail(
    config: Mapping[str, Any], *, created: datetime, tags: Iterable[Mapping[str, str]] | None
) -> dict[str, Any]:
    """`detail` of `SageMaker Endpoint Config State Change`: the whole config, nulls included."""
    variants = []
    for variant in config.get("ProductionVariants") or []:
        shaped = {key: variant.get(key) for key in CONFIG_EVENT_VARIANT_FIELDS}
        shaped.update({key: value for key, value in variant.items() if key not in shaped})
        variants.append(shaped)
    detail: dict[str, Any] = {
        "EndpointConfigName": config["EndpointConfigName"],
        "EndpointConfigArn": config["EndpointConfigArn"],
        "ProductionVariants": variants,
    }
    detail.update({key: config.get(key) or None for key in CONFIG_EVENT_FIELDS})
    for key in ("ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation"):
        if config.get(key) is not None:
            detail[key] = config[key]
    detail["CreationTime"] = epoch_ms(created)
    detail["Tags"] = tags_map(tags)
    return detail
