"""Unit-test fixtures: moto in-process (no network, no server) and builders for endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ssm_guard import clients
from ssm_guard.enforce import Guard
from ssm_guard.settings import Settings

REGION = "us-east-1"
ACCOUNT = "123456789012"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu"
SESSION_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


@pytest.fixture(autouse=True)
def _isolated_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    clients.client.cache_clear()


@dataclass
class Account:
    """A fake AWS account with helpers to build SageMaker endpoints the way a user would."""

    sagemaker: Any
    iam: Any
    policy_arn: str

    def role(self, name: str, path: str = "/") -> str:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = self.iam.create_role(
            RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust)
        )
        return str(role["Role"]["Arn"])

    def model(self, name: str, role_arn: str, containers: int = 1, **extra: Any) -> str:
        if containers == 1:
            self.sagemaker.create_model(
                ModelName=name,
                ExecutionRoleArn=role_arn,
                PrimaryContainer={"Image": IMAGE},
                **extra,
            )
        else:
            self.sagemaker.create_model(
                ModelName=name,
                ExecutionRoleArn=role_arn,
                Containers=[
                    {"Image": IMAGE, "ContainerHostname": f"step-{i}"} for i in range(containers)
                ],
                **extra,
            )
        return name

    def endpoint(
        self,
        name: str,
        variants: list[dict[str, Any]],
        tags: dict[str, str] | None = None,
        **config_extra: Any,
    ) -> str:
        production_variants = [
            {
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
                **variant,
            }
            for variant in variants
        ]
        tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=production_variants,
            **config_extra,
        )
        kwargs: dict[str, Any] = {"Tags": tag_list} if tag_list else {}
        self.sagemaker.create_endpoint(
            EndpointName=name, EndpointConfigName=f"{name}-config", **kwargs
        )
        return name

    def attached(self, role_arn: str) -> list[str]:
        name = role_arn.rsplit("/", 1)[-1]
        policies = self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        return [p["PolicyArn"] for p in policies]


@pytest.fixture
def account() -> Iterator[Account]:
    with mock_aws():
        iam = boto3.client("iam")
        policy = iam.create_policy(
            PolicyName="ssm-guard-sagemaker-ssm-session",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": SESSION_ACTIONS, "Resource": "*"}],
                }
            ),
        )
        yield Account(
            sagemaker=boto3.client("sagemaker"),
            iam=iam,
            policy_arn=policy["Policy"]["Arn"],
        )


@pytest.fixture
def guard(account: Account) -> Guard:
    return Guard(
        settings=Settings(policy_arn=account.policy_arn),
        sagemaker=account.sagemaker,
        iam=account.iam,
    )
