"""Target discovery end to end on the embedded local AWS: an endpoint comes into service, is
updated (a new fleet), and is deleted; the deployed TargetsFunction follows through the
template's rules, and `ssm-guard targets` reads what it published."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from ssm_guard.cli.main import main
from ssm_guard.local.api import LocalAws

pytestmark = pytest.mark.integration

PREFIX = "/sagemaker-ssm-guard/targets"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _published(ssm: Any, name: str) -> list[str]:
    value = json.loads(ssm.get_parameter(Name=f"{PREFIX}/{name}")["Parameter"]["Value"])
    return [t["target"] for t in value["targets"]]


def _expected(
    name: str, instances: dict[str, list[str]], containers: dict[str, list[str]]
) -> list[str]:
    return sorted(
        f"sagemaker-endpoint:{name}_{variant}_{instance}" + (f"_{c}" if c else "")
        for variant, ids in instances.items()
        for instance in ids
        for c in containers.get(variant) or [None]
    )


def _config(sagemaker: Any, name: str, counts: dict[str, int]) -> None:
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "single",
                "ModelName": f"{name.rsplit('-', 1)[0]}-single",
                "InitialInstanceCount": counts["single"],
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            },
            {
                "VariantName": "pipeline",
                "ModelName": f"{name.rsplit('-', 1)[0]}-pipeline",
                "InitialInstanceCount": counts["pipeline"],
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            },
        ],
    )


def test_targets_follow_the_endpoint_through_update_and_deletion(
    local_aws_env: LocalAws,
    local_client: Callable[[str], Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aws = local_aws_env
    sagemaker, ssm = local_client("sagemaker"), local_client("ssm")
    name = f"disc-{uuid.uuid4().hex[:8]}"
    role = local_client("iam").create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    sagemaker.create_model(
        ModelName=f"{name}-single", ExecutionRoleArn=role, PrimaryContainer={"Image": IMAGE}
    )
    # A two-container model without hostnames: SageMaker names them container_0, container_1.
    sagemaker.create_model(
        ModelName=f"{name}-pipeline",
        ExecutionRoleArn=role,
        Containers=[{"Image": IMAGE}, {"Image": IMAGE}],
    )
    containers = {"pipeline": ["container_0", "container_1"]}

    def published_when(function_done: int) -> list[str]:
        aws.wait_for_invocations(
            function="TargetsFunction",
            predicate=lambda i: i.endpoint_name == name,
            since=function_done,
        )
        aws.settle()
        return _published(ssm, name)

    # GIVEN an endpoint with SSM on both variants comes into service
    _config(sagemaker, f"{name}-v1", {"single": 1, "pipeline": 2})
    mark = aws.mark()
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v1")
    # THEN every container of every live instance is published, both target formats
    first_fleet = aws.instances(name)
    assert published_when(mark) == _expected(name, first_fleet, containers)
    assert len(_expected(name, first_fleet, containers)) == 5

    # WHEN it is updated (a new fleet replaces every instance)
    _config(sagemaker, f"{name}-v2", {"single": 2, "pipeline": 1})
    mark = aws.mark()
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v2")
    aws.wait_for_endpoint(name)
    second_fleet = aws.instances(name)
    published = published_when(mark)
    # THEN only the new fleet is published; the old fleet's streams are left out
    assert published == _expected(name, second_fleet, containers)
    old = {i for ids in first_fleet.values() for i in ids}
    assert not any(instance in target for target in published for instance in old)

    # AND `ssm-guard targets --json` reads it back for scripts
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    capsys.readouterr()
    assert main(["targets", name, "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert sorted(t["target"] for t in doc["targets"]) == published

    # WHEN the endpoint is deleted
    mark = aws.mark()
    sagemaker.delete_endpoint(EndpointName=name)
    aws.wait_for_invocations(
        function="TargetsFunction",
        predicate=lambda i: (
            i.endpoint_name == name and i.event["detail"]["EndpointStatus"] == "DELETED"
        ),
        since=mark,
    )
    # THEN its parameter is gone
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"{PREFIX}/{name}")


def test_the_schedule_runs_the_refresh(local_aws: LocalAws) -> None:
    # WHEN the deployed schedule fires
    invocations = local_aws.fire_schedule("TargetsFunction")
    # THEN the function refreshed every endpoint without error
    assert invocations
    assert all(i.ok for i in invocations), [i.error for i in invocations]
    assert invocations[0].result["trigger"] == "schedule"
