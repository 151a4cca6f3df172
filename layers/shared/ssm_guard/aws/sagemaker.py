"""Reading and changing SageMaker endpoints."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ssm_guard.aws.errors import is_not_found
from ssm_guard.endpoint import EndpointSnapshot, ModelInfo, variants_of

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

_RESPONSE_ONLY = ("ResponseMetadata",)


class EndpointNotFoundError(LookupError):
    """The endpoint does not exist (any more)."""


def _millis(value: object) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return None


def _strip(described: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in described.items() if k not in _RESPONSE_ONLY}


def describe_endpoint(client: SageMakerClient, name: str) -> dict[str, Any]:
    try:
        return _strip(dict(client.describe_endpoint(EndpointName=name)))
    except client.exceptions.ClientError as exc:
        if is_not_found(exc):
            raise EndpointNotFoundError(name) from exc
        raise


def describe_endpoint_config(client: SageMakerClient, name: str) -> dict[str, Any]:
    return _strip(dict(client.describe_endpoint_config(EndpointConfigName=name)))


def list_tags(client: SageMakerClient, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        for tag in page.get("Tags", []):
            tags[tag["Key"]] = tag.get("Value", "")
    return tags


def describe_models(
    client: SageMakerClient, names: Iterable[str], known: dict[str, ModelInfo] | None = None
) -> dict[str, ModelInfo]:
    """The models by name. `known` holds models read before (models never change once created)
    and receives those read now, so a sweep describes each model once."""
    models: dict[str, ModelInfo] = {}
    for name in sorted(set(names)):
        if known is not None and name in known:
            models[name] = known[name]
            continue
        models[name] = ModelInfo.from_describe(client.describe_model(ModelName=name))
        if known is not None:
            known[name] = models[name]
    return models


def read_endpoint(
    client: SageMakerClient,
    name: str,
    *,
    described: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    models: dict[str, ModelInfo] | None = None,
) -> EndpointSnapshot:
    """The live picture of an endpoint, with the fewest calls the decision needs: tags and models
    are read only when a variant has SSM access on. Callers that already hold the describe
    output, the config or the tags (the sweep reads them in bulk) pass them in; `models` is a
    cache of models read before, filled as models are read."""
    endpoint = described if described is not None else describe_endpoint(client, name)
    config_name = str(endpoint["EndpointConfigName"])
    config = config if config is not None else describe_endpoint_config(client, config_name)
    variants = variants_of(config)
    ssm_on = any(v.ssm_enabled for v in variants)
    if tags is None:
        tags = list_tags(client, str(endpoint["EndpointArn"])) if ssm_on else {}
    model_names = [v.model_name for v in variants if v.ssm_enabled and v.model_name]
    return EndpointSnapshot(
        name=str(endpoint["EndpointName"]),
        arn=str(endpoint["EndpointArn"]),
        status=str(endpoint["EndpointStatus"]),
        config_name=config_name,
        config=config,
        variants=variants,
        tags=tags,
        models=describe_models(client, model_names, models) if model_names else {},
        live_variants=tuple(endpoint.get("ProductionVariants") or ()),
        last_modified_ms=_millis(endpoint.get("LastModifiedTime")),
        creation_ms=_millis(endpoint.get("CreationTime")),
    )


# Changing endpoints (the guardrail and `ssm-guard enable/disable`).


def create_endpoint_config(client: SageMakerClient, kwargs: dict[str, Any]) -> None:
    """CreateEndpointConfig with arguments from `clone.clone_without_ssm` / `clone_with_ssm`."""
    client.create_endpoint_config(**kwargs)


def update_endpoint(client: SageMakerClient, endpoint_name: str, config_name: str) -> None:
    """Point the endpoint at another config, keeping each variant's live instance count and
    weight (autoscaling may have moved them away from the config's initial values)."""
    client.update_endpoint(
        EndpointName=endpoint_name,
        EndpointConfigName=config_name,
        RetainAllVariantProperties=True,
    )


def delete_endpoint_config(client: SageMakerClient, name: str) -> None:
    client.delete_endpoint_config(EndpointConfigName=name)


def add_tags(client: SageMakerClient, arn: str, tags: dict[str, str]) -> None:
    client.add_tags(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def list_endpoint_names(client: SageMakerClient) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator("list_endpoints").paginate(PaginationConfig={"PageSize": 100}):
        names.extend(str(e["EndpointName"]) for e in page.get("Endpoints", []))
    return names


def list_endpoint_configs(client: SageMakerClient) -> list[dict[str, Any]]:
    """Every endpoint config summary (name, ARN, creation time)."""
    configs: list[dict[str, Any]] = []
    paginator = client.get_paginator("list_endpoint_configs")
    for page in paginator.paginate(PaginationConfig={"PageSize": 100}):
        configs.extend(dict(c) for c in page.get("EndpointConfigs", []))
    return configs


SEARCH_PAGE_SIZE = 100


def search_endpoints(
    client: SageMakerClient, token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of up to 100 endpoints from Search, each with DescribeEndpoint's fields and its
    tags (aws-facts 6), and the token of the next page (None after the last)."""
    kwargs: dict[str, Any] = {"Resource": "Endpoint", "MaxResults": SEARCH_PAGE_SIZE}
    if token:
        kwargs["NextToken"] = token
    response = client.search(**kwargs)
    records = [
        dict(result["Endpoint"]) for result in response.get("Results", []) if "Endpoint" in result
    ]
    return records, response.get("NextToken") or None


def endpoints_modified_since(client: SageMakerClient, since_ms: int) -> list[str]:
    """Names of endpoints created or changed after `since_ms` (ListEndpoints reads the API
    itself, not the Search index, which may lag)."""
    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC)
    names: list[str] = []
    paginator = client.get_paginator("list_endpoints")
    pages = paginator.paginate(
        LastModifiedTimeAfter=since, PaginationConfig={"PageSize": SEARCH_PAGE_SIZE}
    )
    for page in pages:
        names.extend(str(e["EndpointName"]) for e in page.get("Endpoints", []))
    return names
