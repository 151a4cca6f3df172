"""Least privilege, declared once: every AWS operation the guard calls and the IAM actions it needs.

Cloud Custodian keeps `permissions = (...)` beside each action and fails a test when an action
calls an API it did not declare. The guard does the same with one table: `OPERATIONS` maps each
AWS operation the code calls, `(boto3 service name, API operation name)`, to the IAM actions AWS
authorises it with. `tests/unit/test_permissions.py` finds the operations each function's code
path calls (reading the code from the handler down, and recording the calls of handler runs),
maps them through this table and compares the result with that function's policy in
`template.yaml`: a call without a permission, or a permission without a call, fails the build
and says what to add where.

Adding an AWS call: declare its operation here (once, for every caller), then grant the actions
in the `Policies` of each template function that reaches the call.

This module is plain data; nothing imports it at run time in Lambda.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Operation = tuple[str, str]
"""`(boto3 service name, API operation name)`, e.g. `("sagemaker", "DescribeEndpoint")`."""


@dataclass(frozen=True)
class Permission:
    """What AWS checks when the guard calls one operation."""

    actions: tuple[str, ...]
    """IAM actions every caller needs (empty: the operation needs no permission)."""
    optional: tuple[str, ...] = ()
    """Actions a caller may hold for this operation, needed only for some arguments."""
    resource_types: tuple[str, ...] = ()
    """Resource types the first action is authorised against; each must be granted."""
    reason: str = ""


class UndeclaredOperationError(LookupError):
    """The code calls an AWS operation this module does not declare."""


def _same(service: str, *operations: str, prefix: str | None = None) -> dict[Operation, Permission]:
    """Operations whose IAM action is `prefix:Operation` (the usual case)."""
    return {
        (service, operation): Permission((f"{prefix or service}:{operation}",))
        for operation in operations
    }


_KMS_FOR_SAGEMAKER = ("kms:CreateGrant", "kms:DescribeKey")

OPERATIONS: Mapping[Operation, Permission] = {
    # SageMaker: reading endpoints (aws/sagemaker.py).
    **_same(
        "sagemaker",
        "DescribeEndpoint",
        "DescribeEndpointConfig",
        "DescribeModel",
        "ListTags",
        "ListEndpoints",
        "ListEndpointConfigs",
        "Search",
        "AddTags",
        "DeleteTags",
        "DeleteEndpointConfig",
    ),
    # SageMaker: the guardrail's revert and `ssm-guard enable/disable`.
    ("sagemaker", "CreateEndpointConfig"): Permission(
        ("sagemaker:CreateEndpointConfig",),
        optional=("sagemaker:AddTags", "iam:PassRole"),
        reason=(
            "AddTags when the copy carries tags (tag on create); PassRole when the config names "
            "an ExecutionRoleArn (inference components)"
        ),
    ),
    ("sagemaker", "UpdateEndpoint"): Permission(
        ("sagemaker:UpdateEndpoint", *_KMS_FOR_SAGEMAKER),
        resource_types=("endpoint", "endpoint-config"),
        reason=(
            "UpdateEndpoint is authorised against the endpoint and the new endpoint config "
            "(aws-facts 4); a config with KmsKeyId needs KMS grants, for SageMaker only"
        ),
    ),
    # IAM: the session policy on execution roles (aws/iam.py).
    **_same(
        "iam",
        "ListAttachedRolePolicies",
        "GetAccountSummary",
        "AttachRolePolicy",
        "DetachRolePolicy",
        "ListEntitiesForPolicy",
    ),
    # Parameter Store: published target IDs.
    **_same(
        "ssm",
        "GetParameter",
        "GetParameters",
        "GetParametersByPath",
        "DeleteParameter",
        "DeleteParameters",
        "DescribeParameters",
        "AddTagsToResource",
        "StartSession",
        "TerminateSession",
    ),
    ("ssm", "PutParameter"): Permission(
        ("ssm:PutParameter",),
        optional=("ssm:AddTagsToResource",),
        reason="AddTagsToResource when the parameter is created with tags",
    ),
    # CloudWatch Logs: the endpoints' SSM log streams.
    **_same("logs", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents", "DescribeLogGroups"),
    # Alerts, re-checks and who-did-it.
    **_same("sns", "Publish"),
    **_same("events", "PutEvents"),
    **_same("cloudtrail", "LookupEvents"),
    **_same("scheduler", "GetSchedule", "DeleteSchedule", "ListSchedules"),
    ("scheduler", "CreateSchedule"): Permission(
        ("scheduler:CreateSchedule", "iam:PassRole"),
        reason="a schedule runs its target with a role the caller passes to Scheduler",
    ),
    ("scheduler", "UpdateSchedule"): Permission(
        ("scheduler:UpdateSchedule", "iam:PassRole"),
        reason="a schedule runs its target with a role the caller passes to Scheduler",
    ),
    # Idempotency records (Powertools) and fan-out.
    **_same("dynamodb", "GetItem", "PutItem", "UpdateItem", "DeleteItem"),
    **_same("sqs", "SendMessage"),
    ("sqs", "SendMessageBatch"): Permission(("sqs:SendMessage",)),
    ("lambda", "Invoke"): Permission(("lambda:InvokeFunction",)),
    **_same("cloudwatch", "PutMetricData"),
    # NOTE: GetCallerIdentity needs no permission; an explicit deny cannot even block it
    # (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
    ("sts", "GetCallerIdentity"): Permission((), reason="needs no permission"),
    # An organization-wide deployment (accounts.py): the central functions assume the member
    # role, read which accounts are members, and name each account's alias in alerts.
    # `ssm-guard audit/enable/disable` read the deployed guard's settings (cli/_deployed.py).
    **_same("cloudformation", "DescribeStacks"),
    **_same("lambda", "GetFunctionConfiguration"),
    **_same("sts", "AssumeRole"),
    **_same("organizations", "ListAccounts"),
    **_same("iam", "ListAccountAliases"),
}

LIBRARY_OPERATIONS: Mapping[str, tuple[Operation, ...]] = {
    # Powertools Idempotency reads, writes, updates and (after a failure) deletes its record.
    "aws_lambda_powertools.utilities.idempotency.DynamoDBPersistenceLayer": (
        ("dynamodb", "GetItem"),
        ("dynamodb", "PutItem"),
        ("dynamodb", "UpdateItem"),
        ("dynamodb", "DeleteItem"),
    ),
    "aws_lambda_powertools.utilities.parameters.get_parameter": (("ssm", "GetParameter"),),
    "aws_lambda_powertools.utilities.parameters.get_parameters": (("ssm", "GetParametersByPath"),),
}
"""Library entry points that call AWS on the guard's behalf, by their import path."""

FUNCTION_EXTRA_OPERATIONS: Mapping[str, tuple[Operation, ...]] = {}
"""Operations a function (template logical ID) calls on a path that reading the code cannot
follow (a call through a name built at run time). Keep it empty when you can."""

FUNCTION_UNCALLED_OPERATIONS: Mapping[str, Mapping[Operation, str]] = {
    "TargetsFunction": {
        ("sagemaker", "ListTags"): "discovery hands read_endpoint tags={}: targets need no tags",
    },
}
"""Operations reading the code finds on a function's path that the function never makes (a
branch its arguments rule out), each with the reason. Handler runs check the claim."""

REQUIRED_CONDITION_KEYS: Mapping[str, str] = {
    "iam:AttachRolePolicy": "iam:PolicyARN",
    "iam:DetachRolePolicy": "iam:PolicyARN",
    "iam:PassRole": "iam:PassedToService",
    "kms:CreateGrant": "kms:ViaService",
    "kms:DescribeKey": "kms:ViaService",
}
"""Actions too strong to grant bare: every statement allowing one must carry this condition."""

WILDCARD_RESOURCE_ACTIONS = frozenset(
    {
        # These support no resource-level permission: the Service Authorization Reference lists
        # no resource type for them, so the statement must say "*".
        "iam:GetAccountSummary",
        "sagemaker:ListEndpoints",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:Search",
        "ssm:DescribeParameters",
        "cloudtrail:LookupEvents",
        "cloudwatch:PutMetricData",
        "scheduler:ListSchedules",
        "organizations:ListAccounts",
        "iam:ListAccountAliases",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)
"""Actions a statement may grant on `Resource: "*"`; every other action names its resources."""


def permission_for(operation: Operation) -> Permission:
    """The declared permission of one operation; a clear error when it is not declared."""
    try:
        return OPERATIONS[operation]
    except KeyError:
        service, name = operation
        raise UndeclaredOperationError(
            f"{service}.{name} is not declared in ssm_guard/permissions.py: add "
            f'("{service}", "{name}"): Permission(("{service}:{name}",)) to OPERATIONS '
            "(check the IAM action in the Service Authorization Reference)"
        ) from None


def required_actions(operations: Iterable[Operation]) -> frozenset[str]:
    """Every IAM action a caller of these operations must hold."""
    return frozenset(action for op in operations for action in permission_for(op).actions)


def allowed_actions(operations: Iterable[Operation]) -> frozenset[str]:
    """The required actions plus those some arguments of these operations need."""
    found: set[str] = set()
    for op in operations:
        permission = permission_for(op)
        found.update(permission.actions)
        found.update(permission.optional)
    return frozenset(found)
