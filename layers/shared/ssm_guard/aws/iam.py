"""Attaching the guard's session policy to execution roles."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# The default quota of managed policies per role; the account summary tells the real one.
DEFAULT_ATTACHED_POLICIES_QUOTA = 10


def role_name(role_arn: str) -> str:
    """`arn:aws:iam::1:role/path/to/name` -> `name` (IAM APIs take the bare name)."""
    if ":role/" not in role_arn:
        raise ValueError(f"not an IAM role ARN: {role_arn!r}")
    return role_arn.rsplit("/", 1)[-1]


def attached_policy_arns(client: IAMClient, role_arn: str) -> list[str]:
    arns: list[str] = []
    paginator = client.get_paginator("list_attached_role_policies")
    for page in paginator.paginate(RoleName=role_name(role_arn)):
        arns.extend(p["PolicyArn"] for p in page.get("AttachedPolicies", []))
    return arns


@functools.cache
def _quota(client: IAMClient) -> int:
    summary = client.get_account_summary().get("SummaryMap", {})
    return int(summary.get("AttachedPoliciesPerRoleQuota", DEFAULT_ATTACHED_POLICIES_QUOTA))


def attached_policies_quota(client: IAMClient) -> int:
    """Read once per process: the quota changes only through a Service Quotas request."""
    return _quota(client)


def attach_session_policy(client: IAMClient, role_arn: str, policy_arn: str) -> None:
    client.attach_role_policy(RoleName=role_name(role_arn), PolicyArn=policy_arn)


def detach_session_policy(client: IAMClient, role_arn: str, policy_arn: str) -> None:
    client.detach_role_policy(RoleName=role_name(role_arn), PolicyArn=policy_arn)


def roles_holding_policy(client: IAMClient, policy_arn: str) -> frozenset[str]:
    """Names of the roles the policy is attached to: one call per 100 roles, for the whole
    account (the sweep's cleanup and bulk reads). ListEntitiesForPolicy gives names, not ARNs;
    a role name is unique in an account whatever its path."""
    names: set[str] = set()
    paginator = client.get_paginator("list_entities_for_policy")
    for page in paginator.paginate(PolicyArn=policy_arn, EntityFilter="Role"):
        names.update(str(role["RoleName"]) for role in page.get("PolicyRoles", []))
    return frozenset(names)


def detach_policy_by_role_name(client: IAMClient, name: str, policy_arn: str) -> None:
    client.detach_role_policy(RoleName=name, PolicyArn=policy_arn)


def account_alias(client: IAMClient) -> str:
    """The account's alias (an account has at most one), or "" when it has none."""
    aliases = client.list_account_aliases().get("AccountAliases", [])
    return str(aliases[0]) if aliases else ""
