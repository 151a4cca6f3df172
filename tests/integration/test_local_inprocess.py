"""The local AWS in this very process (what `local up` and the demo use), and what it leaves
behind once stopped."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from ssm_guard.local.api import LocalAws

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/r"
VARIANT = {
    "VariantName": "v",
    "InitialInstanceCount": 1,
    "InstanceType": "ml.m5.large",
    "EnableSSMAccess": True,
}


def _endpoint(sagemaker: Any, name: str) -> None:
    sagemaker.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="c", ProductionVariants=[{**VARIANT, "ModelName": "m"}]
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="c")


def test_a_zero_delay_runs_transitions_before_the_call_returns() -> None:
    # GIVEN an in-process local AWS whose endpoints change state without waiting
    with LocalAws(delay=0) as aws:
        sagemaker = aws.client("sagemaker")

        # WHEN an endpoint is created, then updated
        _endpoint(sagemaker, "Zero-Delay")
        created = sagemaker.describe_endpoint(EndpointName="Zero-Delay")
        first = aws.instances("Zero-Delay")
        sagemaker.update_endpoint(EndpointName="Zero-Delay", EndpointConfigName="c")
        updated = sagemaker.describe_endpoint(EndpointName="Zero-Delay")

        # THEN each call answered with the endpoint already in service, on a new fleet
        assert created["EndpointStatus"] == updated["EndpointStatus"] == "InService"
        assert created["EndpointArn"].endswith("endpoint/zero-delay")
        assert aws.instances("Zero-Delay")["v"] != first["v"]


def test_stopping_gives_moto_its_own_behaviour_back() -> None:
    # GIVEN a local AWS started and stopped in this process
    with LocalAws(delay=0):
        pass

    # WHEN moto is used in-process afterwards, as unit tests do
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        _endpoint(sagemaker, "Plain-Moto")
        described = sagemaker.describe_endpoint(EndpointName="Plain-Moto")

    # THEN none of the additions remain
    assert described["EndpointArn"].endswith("endpoint/Plain-Moto")
    assert not hasattr(SageMakerModelBackend, "update_endpoint")
    assert "call_action" not in vars(SageMakerResponse)
