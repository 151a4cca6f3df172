"""One guard for a whole AWS Organization on the local AWS (in this process): the central stack
and member stacks from the same template; member events forwarded to the central bus reach the
central functions, which act in the member account through the member role."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ssm_guard.local.api import LocalAws
from ssm_guard.local.demo import IMAGE, TRUST
from ssm_guard.local.org import LocalOrg, LocalOrgError

pytestmark = pytest.mark.integration
WAIT = 60.0


@pytest.fixture
def org() -> Iterator[LocalOrg]:
    with LocalAws(delay=0.1) as aws, LocalOrg.start(aws, members=2) as organization:
        yield organization


def ssm_endpoint(org: LocalOrg, account: str, name: str, tags: dict[str, str]) -> str:
    iam, sagemaker = org.client(account, "iam"), org.client(account, "sagemaker")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    sagemaker.create_model(
        ModelName=f"{name}-model", ExecutionRoleArn=role, PrimaryContainer={"Image": IMAGE}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
    )
    sagemaker.create_endpoint(
        EndpointName=name,
        EndpointConfigName=f"{name}-config",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    return str(role)


def attached(org: LocalOrg, account: str, role_arn: str) -> list[str]:
    found = org.client(account, "iam").list_attached_role_policies(
        RoleName=role_arn.rsplit("/", 1)[-1]
    )
    return [policy["PolicyArn"] for policy in found["AttachedPolicies"]]


def test_member_events_are_forwarded_and_acted_on_in_the_member_account(org: LocalOrg) -> None:
    aws = org.aws
    dev, prod = org.members
    sqs = aws.client("sqs")
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    aws.client("sns").subscribe(
        TopicArn=aws.stack["outputs"]["AlertTopicArn"],
        Protocol="sqs",
        Endpoint=inbox_arn["Attributes"]["QueueArn"],
    )
    org.client(prod, "iam").create_account_alias(AccountAlias="vision-prod")

    # GIVEN a dev endpoint in one member account and a production one in the other, both with
    # SSM access on, created through each account's own SageMaker API
    mark = aws.mark()
    dev_role = ssm_endpoint(org, dev, "dev-ep", {"environment": "dev"})
    ssm_endpoint(org, prod, "prod-ep", {"environment": "prod"})

    # WHEN their events travel member rule -> central bus -> central rules
    runs = aws.wait_for_invocations(
        function="EnforcerFunction",
        predicate=lambda i: i.endpoint_name == "dev-ep",
        since=mark,
        timeout=WAIT,
    )
    aws.wait_for_invocations(
        function="EnforcerFunction",
        predicate=lambda i: i.endpoint_name == "prod-ep" and i.decision == "reverted",
        since=mark,
        timeout=WAIT,
    )
    aws.settle(timeout=WAIT)

    # THEN the central enforcer got the member's event, on a rule of the central bus
    first = runs[0]
    assert first.event["account"] == dev
    assert first.trigger["rule"].startswith("sagemaker-ssm-guard-central-CentralEndpoint")
    # AND acted in the member account: its own session policy on its own role
    assert attached(org, dev, dev_role) == [
        f"arn:aws:iam::{dev}:policy/ssm-guard-sagemaker-ssm-session-{aws.region}"
    ]
    # AND published the targets in the member's Parameter Store, not the central one
    parameter = org.client(dev, "ssm").get_parameter(Name="/sagemaker-ssm-guard/targets/dev-ep")
    assert f":{dev}:parameter/" in parameter["Parameter"]["ARN"]
    with pytest.raises(Exception, match="ParameterNotFound"):
        aws.client("ssm").get_parameter(Name="/sagemaker-ssm-guard/targets/dev-ep")
    # AND reverted the production endpoint in its own account, alerting the centre with the
    # account and its alias
    sagemaker = org.client(prod, "sagemaker")
    described = sagemaker.describe_endpoint(EndpointName="prod-ep")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    assert described["EndpointStatus"] == "InService"
    assert [v["EnableSSMAccess"] for v in config["ProductionVariants"]] == [False]
    messages = [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    ]
    assert any(f"{prod} (vision-prod)" in m["Message"] for m in messages), messages


def test_an_account_outside_the_organization_is_refused_and_alerted(org: LocalOrg) -> None:
    aws = org.aws
    outsider = org.outsider()
    mark = aws.mark()
    role = ssm_endpoint(org, outsider, "rogue-ep", {"environment": "dev"})
    (run,) = aws.wait_for_invocations(
        function="EnforcerFunction",
        predicate=lambda i: i.endpoint_name == "rogue-ep",
        since=mark,
        timeout=WAIT,
    )
    aws.settle(timeout=WAIT)
    assert run.decision == "foreign-account"
    assert run.result["alert"] == "sent"
    assert attached(org, outsider, role) == []


def test_the_sweep_runs_once_per_account_in_its_own_invocation(org: LocalOrg) -> None:
    aws = org.aws
    # (moto keeps what earlier tests of this process created: count the organization now)
    listed = aws.client("organizations").list_accounts()["Accounts"]
    accounts = {str(account["Id"]) for account in listed}
    assert {org.central, *org.members} <= accounts
    mark = aws.mark()
    (scheduled,) = aws.fire_schedule("SweepFunction", timeout=WAIT)
    units = aws.wait_for_invocations(
        function="SweepFunction",
        predicate=lambda i: isinstance(i.result, dict) and "account" in i.result,
        since=mark,
        count=len(accounts),
        timeout=WAIT,
    )
    assert scheduled.result["units"] == len(accounts)
    assert {u.result["account"] for u in units} == accounts
    assert all(u.result["finished"] for u in units)
    assert {u.trigger["type"] for u in units} == {"lambda:Invoke"}


def test_the_organization_needs_the_local_aws_in_this_process() -> None:
    with pytest.raises(LocalOrgError, match="in this process"):
        LocalOrg.start(LocalAws(), members=1)
