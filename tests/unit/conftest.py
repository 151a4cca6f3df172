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


# -- the production guardrail (guardrail.py, cli/switch.py) ---------------------------------


class UpdatableSageMaker:
    """moto's in-process SageMaker client plus what the guardrail needs and moto lacks:

    - UpdateEndpoint (absent from moto): each call is recorded in `updates`; with `busy` set it
      answers as AWS does for an endpoint in progress; otherwise the endpoint runs on the new
      config at once. `fail_with` makes it refuse with that (code, message).
    - DescribeEndpointConfig returns every field CreateEndpointConfig was given (moto drops
      ShadowProductionVariants, VpcConfig, ExecutionRoleArn and others), as AWS does.
    """

    def __init__(self, real: Any) -> None:
        self._real = real
        self._full: dict[str, dict[str, Any]] = {}
        self.updates: list[dict[str, Any]] = []
        self.created: list[str] = []
        self.busy = False
        self.fail_with: tuple[str, str] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def create_endpoint_config(self, **kwargs: Any) -> Any:
        import copy

        from botocore.exceptions import ClientError
        from moto.sagemaker.models import sagemaker_backends

        name = kwargs["EndpointConfigName"]
        if name in sagemaker_backends[ACCOUNT][REGION].endpoint_configs:
            # AWS refuses an existing name; moto would silently replace the config.
            arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{name.lower()}"
            message = f'Cannot create already existing endpoint configuration "{arn}".'
            error = {"Error": {"Code": "ValidationException", "Message": message}}
            raise ClientError(error, "CreateEndpointConfig")
        response = self._real.create_endpoint_config(**kwargs)
        kept = {k: v for k, v in kwargs.items() if k not in ("EndpointConfigName", "Tags")}
        self._full[kwargs["EndpointConfigName"]] = copy.deepcopy(kept)
        self.created.append(kwargs["EndpointConfigName"])
        return response

    def describe_endpoint_config(self, **kwargs: Any) -> Any:
        import copy

        described = self._real.describe_endpoint_config(**kwargs)
        described.update(copy.deepcopy(self._full.get(kwargs["EndpointConfigName"], {})))
        return described

    def delete_endpoint_config(self, **kwargs: Any) -> Any:
        self._full.pop(kwargs["EndpointConfigName"], None)
        return self._real.delete_endpoint_config(**kwargs)

    def update_endpoint(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError
        from moto.core.utils import utcnow
        from moto.sagemaker.models import sagemaker_backends

        self.updates.append(kwargs)
        backend = sagemaker_backends[ACCOUNT][REGION]
        endpoint = backend.endpoints.get(kwargs["EndpointName"])
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{kwargs['EndpointName'].lower()}"
        if endpoint is None:
            code, message = "ValidationException", f"Could not find endpoint '{arn}'."
        elif self.busy:
            code, message = "ValidationException", f'Cannot update in-progress endpoint "{arn}".'
        elif self.fail_with:
            code, message = self.fail_with
        else:
            self._real.describe_endpoint_config(EndpointConfigName=kwargs["EndpointConfigName"])
            endpoint.endpoint_config_name = kwargs["EndpointConfigName"]
            endpoint.last_modified_time = utcnow()
            return {"EndpointArn": endpoint.arn}
        raise ClientError({"Error": {"Code": code, "Message": message}}, "UpdateEndpoint")

    def configs(self) -> list[str]:
        names = self._real.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
        return sorted(c["EndpointConfigName"] for c in names)


@pytest.fixture
def updatable(account: Account, guard: Guard) -> UpdatableSageMaker:
    """Swap the account's and the guard's SageMaker client for an `UpdatableSageMaker`; request
    it before building endpoints so their configs keep every field."""
    fake = UpdatableSageMaker(account.sagemaker)
    account.sagemaker = fake
    guard.sagemaker = fake
    return fake


@dataclass
class AlertInbox:
    """What the guard published: the SNS topic and the custom events, each read through an SQS
    queue subscribed to it (moto delivers both in-process)."""

    topic_arn: str
    sqs: Any
    topic_queue: str
    events_queue: str

    def _drain(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            batch = got.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def sns(self) -> list[dict[str, Any]]:
        """SNS envelopes: `Subject`, `Message`, `MessageAttributes`."""
        return self._drain(self.topic_queue)

    def events(self) -> list[dict[str, Any]]:
        """EventBridge events with source sagemaker-ssm-guard."""
        return self._drain(self.events_queue)


@pytest.fixture
def alert_inbox(account: Account, guard: Guard) -> AlertInbox:
    """An SNS topic and the default bus wired to queues; the guard's settings point at them."""
    import dataclasses

    sns, sqs, events = boto3.client("sns"), boto3.client("sqs"), boto3.client("events")
    topic_arn = sns.create_topic(Name="ssm-guard-alerts")["TopicArn"]
    urls = {}
    for name in ("topic", "events"):
        url = sqs.create_queue(QueueName=f"inbox-{name}")["QueueUrl"]
        urls[name] = url
    arn = sqs.get_queue_attributes(QueueUrl=urls["topic"], AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    events.put_rule(
        Name="guard-alerts", EventPattern=json.dumps({"source": ["sagemaker-ssm-guard"]})
    )
    arn = sqs.get_queue_attributes(QueueUrl=urls["events"], AttributeNames=["QueueArn"])
    events.put_targets(
        Rule="guard-alerts", Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}]
    )
    guard.settings = dataclasses.replace(guard.settings, alert_topic_arn=topic_arn)
    return AlertInbox(topic_arn, sqs, urls["topic"], urls["events"])


# -- one guard for a whole AWS Organization (accounts.py, org_sweep.py) ---------------------


@pytest.fixture
def central(account: Account, alert_inbox: AlertInbox, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A central deployment in moto's default account serving the member accounts MEMBER and
    OTHER_MEMBER of `_org`; returns the central account (an `_org.AccountOf`). Caches of
    accounts.py (membership, member credentials, aliases) are cleared before and after."""
    from _org import CENTRAL, MEMBER, OTHER_MEMBER, AccountOf

    from ssm_guard import accounts

    accounts.reset_caches()
    monkeypatch.setenv("DEPLOYMENT_ROLE", "central")
    monkeypatch.setenv("GUARD_ACCOUNT_ID", CENTRAL)
    monkeypatch.setenv("MEMBER_ROLE_NAME", "ssm-guard-member")
    monkeypatch.setenv("MEMBER_ACCOUNTS", f"{MEMBER},{OTHER_MEMBER}")
    monkeypatch.setenv("SESSION_POLICY_ARN", account.policy_arn)
    monkeypatch.setenv("ALERT_TOPIC_ARN", alert_inbox.topic_arn)
    monkeypatch.setenv("TARGETS_PARAMETER_PREFIX", "/sagemaker-ssm-guard/targets")
    yield AccountOf(CENTRAL)
    accounts.reset_caches()
