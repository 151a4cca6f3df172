"""AWS Organizations: which accounts belong to the organization the central guard serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient


def active_account_ids(client: OrganizationsClient) -> frozenset[str]:
    """Every ACTIVE account of the organization. Only the management account or a delegated
    administrator may call ListAccounts; anyone else gets AccessDenied (raised).

    NOTE: `State` replaces `Status`, which AWS retires on 2026-09-09 (botocore Organizations
    model, Account.Status); both are read while either may be missing.
    """
    ids: set[str] = set()
    paginator = client.get_paginator("list_accounts")
    for page in paginator.paginate():
        ids.update(
            str(account["Id"])
            for account in page.get("Accounts", [])
            if (account.get("State") or account.get("Status")) == "ACTIVE"
        )
    return frozenset(ids)
