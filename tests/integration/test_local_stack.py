"""template.yaml deployed into the embedded local AWS: the real stack, wired as it says."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ssm_guard.local.api import LocalAws
from ssm_guard.local.deploy import load_template

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _template_functions() -> dict[str, dict[str, Any]]:
    template = load_template(ROOT / "template.yaml")
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_every_template_function_is_deployed_with_its_code_and_resolved_environment(
    local_aws: LocalAws, local_client: Callable[[str], Any]
) -> None:
    # GIVEN the stack deployed from template.yaml
    stack = local_aws.stack or {}
    lambda_client = local_client("lambda")

    # WHEN each deployed function is compared with the template
    declared = _template_functions()

    # THEN the functions are the template's (those whose condition holds), each runs from its
    # CodeUri, with no unresolved intrinsic left
    assert "EnforcerFunction" in stack["functions"]
    assert set(stack["functions"]) <= set(declared)
    for logical_id, spec in stack["functions"].items():
        code_uri = declared[logical_id]["Properties"]["CodeUri"]
        assert Path(spec["code_dir"]) == (ROOT / code_uri).resolve()
        assert Path(spec["code_dir"], "app.py").is_file()
        variables = lambda_client.get_function_configuration(FunctionName=spec["name"])[
            "Environment"
        ]["Variables"]
        assert all(isinstance(value, str) for value in variables.values()), variables
    # AND references are the real resolved values (the session policy is the stack's output)
    enforcer = stack["functions"]["EnforcerFunction"]["name"]
    variables = lambda_client.get_function_configuration(FunctionName=enforcer)["Environment"][
        "Variables"
    ]
    assert variables["SESSION_POLICY_ARN"] == stack["outputs"]["SessionPolicyArn"]


def test_deployed_rules_carry_the_template_patterns(local_aws: LocalAws) -> None:
    # GIVEN the EventBridge rule events of the template's deployed functions
    deployed_functions = set((local_aws.stack or {})["functions"])
    declared = {
        f"{logical_id}{name}": event["Properties"]["Pattern"]
        for logical_id, resource in _template_functions().items()
        if logical_id in deployed_functions
        for name, event in (resource["Properties"].get("Events") or {}).items()
        if event["Type"] == "EventBridgeRule"
    }
    events = local_aws.client("events")

    # WHEN the deployed rules are read back from EventBridge
    deployed = {
        logical_id: json.loads(
            events.describe_rule(Name=rule["name"])["EventPattern"]  # the rule moto holds
        )
        for logical_id, rule in (local_aws.stack or {})["rules"].items()
        if rule["event_pattern"]
    }

    # THEN they are the template's, not a copy kept in Python
    assert declared
    assert {name: deployed.get(name) for name in declared} == declared


def test_the_enforcer_attaches_the_session_policy_to_a_new_ssm_endpoint(
    local_aws: LocalAws, local_client: Callable[[str], Any]
) -> None:
    # GIVEN a role, a model and an SSM-enabled config created through the APIs
    iam, sagemaker = local_client("iam"), local_client("sagemaker")
    suffix = uuid.uuid4().hex[:8]
    role = iam.create_role(
        RoleName=f"endpoint-role-{suffix}",
        AssumeRolePolicyDocument=json.dumps(
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
        ),
    )["Role"]
    sagemaker.create_model(
        ModelName=f"model-{suffix}",
        ExecutionRoleArn=role["Arn"],
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/m:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"config-{suffix}",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"model-{suffix}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
    )
    mark = local_aws.mark()

    # WHEN the endpoint is created and comes in service
    endpoint = f"dev-endpoint-{suffix}"
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"config-{suffix}")
    [invocation] = local_aws.wait_for_invocations(
        function="EnforcerFunction",
        predicate=lambda i: i.endpoint_name == endpoint,
        since=mark,
        timeout=30,
    )

    # THEN the deployed rule delivered IN_SERVICE, and the role now holds the session policy
    assert invocation.ok, invocation.error
    assert invocation.event["detail"]["EndpointStatus"] == "IN_SERVICE"
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [
        local_aws.stack["outputs"]["SessionPolicyArn"]  # type: ignore[index]
    ]
