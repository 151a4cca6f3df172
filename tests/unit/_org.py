"""An organization in moto: a central account (moto's default) and member accounts built
through their own credentials (AssumeRole into account B returns keys moto maps to B, as AWS
does). Used by the organization-wide tests; the `central` fixture is in conftest.py."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import ClientError

from ssm_guard.aws import sts as sts_api

CENTRAL = "123456789012"
MEMBER = "111111111111"
OTHER_MEMBER = "222222222222"
FOREIGN = "999999999999"
REGION = "us-east-1"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu"
SESSION_ACTIONS = ["ssmmessages:CreateControlChannel", "ssmmessages:OpenControlChannel"]


def endpoint_event(owner: str, name: str, status: str = "IN_SERVICE", **envelope: Any) -> dict:
    """The event EventBridge delivers for an endpoint of account `owner`; `envelope` overrides
    fields of the envelope (`account`, `region`)."""
    arn = f"arn:aws:sagemaker:{REGION}:{owner}:endpoint/{name.lower()}"
    return {
        "version": "0",
        "id": f"event-{owner}-{name}-{status}",
        "detail-type": "SageMaker Endpoint State Change",
        "source": "aws.sagemaker",
        "account": owner,
        "region": REGION,
        "time": "2026-12-03T14:06:37Z",
        "resources": [arn],
        "detail": {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": f"{name}-config",
            "EndpointStatus": status,
            "LastModifiedTime": 1764770797000,
        },
        **envelope,
    }


class AccountOf:
    """One account of the fake organization, built through its own credentials."""

    def __init__(self, account: str) -> None:
        self.id = account
        if account == CENTRAL:
            self.session = boto3.session.Session(region_name=REGION)
        else:
            credentials = boto3.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                RoleSessionName="builder",
            )["Credentials"]
            self.session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=REGION,
            )
        self.sagemaker = self.session.client("sagemaker")
        self.iam = self.session.client("iam")
        self.ssm = self.session.client("ssm")

    def session_policy(self) -> str:
        """What the member stack of the region creates (template SessionPolicy)."""
        document = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": SESSION_ACTIONS, "Resource": "*"}],
        }
        created = self.iam.create_policy(
            PolicyName=f"ssm-guard-sagemaker-ssm-session-{REGION}",
            PolicyDocument=json.dumps(document),
        )
        return str(created["Policy"]["Arn"])

    def ssm_endpoint(self, name: str, tags: dict[str, str] | None = None) -> str:
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
            RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        self.sagemaker.create_model(
            ModelName=f"{name}-model", ExecutionRoleArn=role, PrimaryContainer={"Image": IMAGE}
        )
        self.sagemaker.create_endpoint_config(
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
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
        return str(role)

    def attached(self, role_arn: str) -> list[str]:
        name = role_arn.rsplit("/", 1)[-1]
        found = self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        return [policy["PolicyArn"] for policy in found]


def broken_member(monkeypatch, broken: str) -> None:
    """AWS answers AccessDenied when the member role is missing or does not trust the caller."""
    real = sts_api.assume_role

    def assume_role(client: Any, role_arn: str, session_name: str) -> Any:
        if f"::{broken}:" in role_arn:
            raise ClientError(
                {
                    "Error": {
                        "Code": "AccessDenied",
                        "Message": f"not authorized to perform: sts:AssumeRole on {role_arn}",
                    }
                },
                "AssumeRole",
            )
        return real(client, role_arn, session_name)

    monkeypatch.setattr(sts_api, "assume_role", assume_role)
