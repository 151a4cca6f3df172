"""Building SSM-enabled endpoints on the local AWS through the APIs a user would call."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu"
TRUST = json.dumps(
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


def sagemaker_role(iam: Any, name: str) -> str:
    """An execution role SageMaker may assume; returns its ARN."""
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"])


def ssm_endpoint(
    client: Callable[[str], Any],
    name: str,
    tags: Mapping[str, str],
    *,
    instances: int = 1,
    config_tags: Mapping[str, str] | None = None,
) -> str:
    """A one-variant endpoint with SSM access on, its own model and role; returns the role ARN."""
    sagemaker = client("sagemaker")
    role = sagemaker_role(client("iam"), f"{name}-role")
    sagemaker.create_model(
        ModelName=f"{name}-model", ExecutionRoleArn=role, PrimaryContainer={"Image": IMAGE}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
                "EnableSSMAccess": True,
            }
        ],
        Tags=[{"Key": k, "Value": v} for k, v in (config_tags or {}).items()],
    )
    sagemaker.create_endpoint(
        EndpointName=name,
        EndpointConfigName=f"{name}-config",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    return role
