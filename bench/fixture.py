"""An account full of endpoints, built through the AWS API as a user's account would be.

Roles, then models (CreateModel), then endpoint configs (CreateEndpointConfig), several endpoints
sharing each config, then endpoints (CreateEndpoint with tags). Which endpoints are production
and which configs have SSM access on follows fixed strides, so every run builds the same account.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu"
INSTANCE_TYPE = "ml.m5.large"
SESSION_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]
BUILD_THREADS = 8
_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass(frozen=True)
class Shape:
    """How the account looks. Defaults: 4 endpoints per config, 1 config in 10 with SSM access
    on, 1 endpoint in 5 tagged `environment=prod` among those without SSM access and exactly
    `production_ssm` (3) among those with it (what the guard must revert), 5 roles, 20 models.
    A stride of 0 means none."""

    endpoints: int
    endpoints_per_config: int = 4
    production_every: int = 5
    ssm_config_every: int = 10
    production_ssm: int = 3
    roles: int = 5
    models: int = 20
    prefix: str = "bench"

    def configs(self) -> int:
        return -(-self.endpoints // self.endpoints_per_config)

    def endpoint_name(self, index: int) -> str:
        return f"{self.prefix}-ep-{index:05d}"

    def config_name(self, index: int) -> str:
        return f"{self.prefix}-cfg-{index:05d}"

    def config_of(self, endpoint: int) -> int:
        return endpoint // self.endpoints_per_config

    def ssm_on(self, config: int) -> bool:
        return self.ssm_config_every > 0 and config % self.ssm_config_every == 0

    def ssm_endpoint(self, endpoint: int) -> bool:
        return self.ssm_on(self.config_of(endpoint))

    def production(self, endpoint: int) -> bool:
        if self.production_every <= 0:
            return False
        if self.ssm_endpoint(endpoint):
            # The first endpoint of each of the first `production_ssm` SSM-enabled configs.
            config = self.config_of(endpoint)
            return (
                endpoint % self.endpoints_per_config == 0
                and config // max(self.ssm_config_every, 1) < self.production_ssm
            )
        return endpoint % self.production_every == 0

    def tags(self, endpoint: int) -> dict[str, str]:
        return {
            "environment": "prod" if self.production(endpoint) else "dev",
            "team": f"team-{endpoint % 7}",
        }


@dataclass(frozen=True)
class Built:
    shape: Shape
    seconds: float
    endpoints: int
    configs: int
    production: int
    ssm_on: int
    production_ssm_on: int
    api_calls: int

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = asdict(self.shape)
        return data


def _parallel(work: Callable[[int], object], indexes: Iterable[int]) -> None:
    with ThreadPoolExecutor(max_workers=BUILD_THREADS) as pool:
        for _ in pool.map(work, indexes):
            pass


def session_policy(iam: Any, name: str = "ssm-guard-sagemaker-ssm-session") -> str:
    """The guard's managed policy, as the template's SessionPolicy makes it (used when no stack
    is deployed: the sweep and Custodian runs)."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": SESSION_ACTIONS, "Resource": "*"}],
    }
    created = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
    return str(created["Policy"]["Arn"])


def build(shape: Shape, client: Callable[[str], Any]) -> Built:
    """Create the account described by `shape` with the clients `client(service)` gives."""
    started = time.perf_counter()
    sagemaker = client("sagemaker")
    iam = client("iam")
    roles = [
        iam.create_role(RoleName=f"{shape.prefix}-role-{i}", AssumeRolePolicyDocument=_TRUST)[
            "Role"
        ]["Arn"]
        for i in range(shape.roles)
    ]
    models = [f"{shape.prefix}-model-{i:03d}" for i in range(shape.models)]

    def create_model(i: int) -> None:
        sagemaker.create_model(
            ModelName=models[i],
            ExecutionRoleArn=roles[i % len(roles)],
            PrimaryContainer={"Image": IMAGE},
        )

    def create_config(c: int) -> None:
        variant: dict[str, Any] = {
            "VariantName": "main",
            "ModelName": models[c % len(models)],
            "InitialInstanceCount": 1,
            "InstanceType": INSTANCE_TYPE,
            "InitialVariantWeight": 1.0,
        }
        if shape.ssm_on(c):
            variant["EnableSSMAccess"] = True
        sagemaker.create_endpoint_config(
            EndpointConfigName=shape.config_name(c), ProductionVariants=[variant]
        )

    def create_endpoint(i: int) -> None:
        sagemaker.create_endpoint(
            EndpointName=shape.endpoint_name(i),
            EndpointConfigName=shape.config_name(shape.config_of(i)),
            Tags=[{"Key": k, "Value": v} for k, v in shape.tags(i).items()],
        )

    _parallel(create_model, range(shape.models))
    _parallel(create_config, range(shape.configs()))
    _parallel(create_endpoint, range(shape.endpoints))
    names = [shape.endpoint_name(i) for i in range(shape.endpoints)]
    wait_in_service(sagemaker, names)
    ssm = [i for i in range(shape.endpoints) if shape.ssm_endpoint(i)]
    return Built(
        shape=shape,
        seconds=round(time.perf_counter() - started, 2),
        endpoints=shape.endpoints,
        configs=shape.configs(),
        production=sum(1 for i in range(shape.endpoints) if shape.production(i)),
        ssm_on=len(ssm),
        production_ssm_on=sum(1 for i in ssm if shape.production(i)),
        api_calls=shape.roles + shape.models + shape.configs() + shape.endpoints,
    )


def wait_in_service(sagemaker: Any, names: list[str], timeout: float = 600.0) -> None:
    """Until every endpoint is InService (the embedded local AWS takes a moment; moto alone
    answers InService at once)."""
    wanted = set(names)
    deadline = time.monotonic() + timeout
    while True:
        ready: set[str] = set()
        for page in sagemaker.get_paginator("list_endpoints").paginate(
            StatusEquals="InService", PaginationConfig={"PageSize": 100}
        ):
            ready.update(e["EndpointName"] for e in page["Endpoints"])
        missing = wanted - ready
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} endpoints never reached InService")
        time.sleep(0.5)
