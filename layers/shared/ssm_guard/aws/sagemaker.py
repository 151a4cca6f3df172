"""Reading and changing SageMaker endpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

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


READ_WORKERS = 8
"""Reads of one Search page made at once: boto3 clients are thread-safe, and the adaptive retry
mode (clients.py) slows every thread down together when SageMaker throttles."""


def _read_each(read: Callable[[str], Any], names: Iterable[str], workers: int) -> dict[str, Any]:
    """`read(name)` for each name, up to `workers` at a time. A read that fails is left out:
    whoever needs it reads it again, and meets the error there as it would have."""

    def attempt(name: str) -> tuple[str, Any]:
        try:
            return name, read(name)
        except (ClientError, BotoCoreError):
            return name, None

    todo = sorted(set(names))
    if len(todo) < 2 or workers < 2:
        found = map(attempt, todo)
        return {name: value for name, value in found if value is not None}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        return {name: value for name, value in pool.map(attempt, todo) if value is not None}


def read_configs_and_models(
    client: SageMakerClient,
    config_names: Iterable[str],
    configs: dict[str, dict[str, Any]],
    models: dict[str, ModelInfo],
    *,
    workers: int = READ_WORKERS,
) -> None:
    """Fill `configs` with the named configs not read yet, then `models` with the models of
    their SSM-enabled variants not read yet, several reads at a time (the sweep, a Search page
    at a time). Each config and model is still read once: the same calls, sooner."""
    wanted = [name for name in config_names if name not in configs]
    configs.update(_read_each(lambda name: describe_endpoint_config(client, name), wanted, workers))
    model_names = {
        variant.model_name
        for name in wanted
        if name in configs
        for variant in variants_of(configs[name])
        if variant.ssm_enabled and variant.model_name and variant.model_name not in models
    }
    models.update(
        _read_each(
            lambda name: ModelInfo.from_describe(client.describe_model(ModelName=name)),
            model_names,
            workers,
        )
    )


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


def list_endpoint_configs(
    client: SageMakerClient, *, name_contains: str | None = None
) -> list[dict[str, Any]]:
    """Every endpoint config summary (name, ARN, creation time), or those whose name contains
    `name_contains` (filtered by the API: fewer pages)."""
    configs: list[dict[str, Any]] = []
    paginator = client.get_paginator("list_endpoint_configs")
    kwargs: dict[str, Any] = {"NameContains": name_contains} if name_contains else {}
    for page in paginator.paginate(PaginationConfig={"PageSize": 100}, **kwargs):
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
