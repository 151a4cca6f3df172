"""A plain-data picture of one endpoint, read live from the API, on which decisions are made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Container:
    """One container of a model: its SSM name is the hostname given, or `container_N`."""

    name: str
    image: str = ""
    model_package: str = ""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    execution_role_arn: str | None
    containers: tuple[Container, ...] = ()
    network_isolation: bool = False
    multi_container: bool = False

    @classmethod
    def from_describe(cls, described: Mapping[str, Any]) -> ModelInfo:
        raw_containers: list[Mapping[str, Any]] = list(described.get("Containers") or [])
        primary = described.get("PrimaryContainer")
        if not raw_containers and primary:
            raw_containers = [primary]
        containers = tuple(
            Container(
                name=str(c.get("ContainerHostname") or f"container_{index}"),
                image=str(c.get("Image") or ""),
                model_package=str(c.get("ModelPackageName") or ""),
            )
            for index, c in enumerate(raw_containers)
        )
        return cls(
            name=str(described["ModelName"]),
            execution_role_arn=described.get("ExecutionRoleArn"),
            containers=containers,
            network_isolation=bool(described.get("EnableNetworkIsolation")),
            multi_container=len(raw_containers) > 1,
        )


@dataclass(frozen=True)
class Variant:
    """A production or shadow variant of an endpoint config."""

    name: str
    model_name: str | None
    ssm_enabled: bool
    shadow: bool = False
    serverless: bool = False

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], *, shadow: bool) -> Variant:
        return cls(
            name=str(raw["VariantName"]),
            model_name=raw.get("ModelName"),
            ssm_enabled=raw.get("EnableSSMAccess") is True,
            shadow=shadow,
            serverless=bool(raw.get("ServerlessConfig")),
        )


@dataclass(frozen=True)
class EndpointSnapshot:
    """The live state of an endpoint: DescribeEndpoint, DescribeEndpointConfig, its tags, and the
    models of its SSM-enabled variants."""

    name: str
    arn: str
    status: str
    config_name: str
    config: Mapping[str, Any]
    variants: tuple[Variant, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    models: Mapping[str, ModelInfo] = field(default_factory=dict)
    live_variants: tuple[Mapping[str, Any], ...] = ()
    last_modified_ms: int | None = None
    creation_ms: int | None = None

    @property
    def ssm_variants(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.ssm_enabled)

    @property
    def config_execution_role(self) -> str | None:
        role = self.config.get("ExecutionRoleArn")
        return role if isinstance(role, str) and role else None


def variants_of(config: Mapping[str, Any]) -> tuple[Variant, ...]:
    production = [
        Variant.from_config(v, shadow=False) for v in config.get("ProductionVariants", [])
    ]
    shadow = [
        Variant.from_config(v, shadow=True) for v in config.get("ShadowProductionVariants") or []
    ]
    return tuple(production + shadow)
