"""`ssm-guard audit --all-accounts`: the audit of every member account and region, one table.

Run it from the central account, as a principal the member role trusts (a role under the central
stack's role path, /NamePrefix/): each account is read through its member role, read-only. An
account whose role cannot be assumed is a row of its own; the others are audited all the same.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ssm_guard import accounts
from ssm_guard.aws import iam as iam_api
from ssm_guard.aws.errors import error_code
from ssm_guard.cli.common import EXIT_OK, EXIT_USAGE, CliError, print_json, print_table
from ssm_guard.decisions import Kind
from ssm_guard.enforce import Guard
from ssm_guard.names import InvalidNameError, validate_name
from ssm_guard.settings import SettingsError

Audit = Callable[..., list[dict[str, Any]]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all-accounts",
        action="store_true",
        help="audit every member account and region through the member role (central account)",
    )
    # Defaults (from the environment) are resolved in org_settings(), so that None means "not
    # given" and a plain audit can refuse these options without --all-accounts.
    parser.add_argument(
        "--accounts",
        metavar="ID,...",
        help="with --all-accounts: these accounts (default: MEMBER_ACCOUNTS, else the "
        "organization's ACTIVE accounts)",
    )
    parser.add_argument(
        "--regions",
        metavar="REGION,...",
        help="with --all-accounts: these regions (default: GUARDED_REGIONS, else yours)",
    )
    parser.add_argument(
        "--member-role",
        help="with --all-accounts: the member role's name (default: MEMBER_ROLE_NAME, else "
        f"{accounts.DEFAULT_MEMBER_ROLE})",
    )


ORG_OPTIONS = ("accounts", "regions", "member_role")


def org_settings(args: argparse.Namespace) -> accounts.OrgSettings:
    """The organization as the command line describes it (a central deployment's view)."""
    env = dict(os.environ)
    env.update(
        DEPLOYMENT_ROLE=accounts.CENTRAL,
        MEMBER_ROLE_NAME=(
            args.member_role or env.get("MEMBER_ROLE_NAME") or accounts.DEFAULT_MEMBER_ROLE
        ),
        MEMBER_ACCOUNTS=env.get("MEMBER_ACCOUNTS", "") if args.accounts is None else args.accounts,
        GUARDED_REGIONS=env.get("GUARDED_REGIONS", "") if args.regions is None else args.regions,
        AWS_LAMBDA_FUNCTION_NAME="audit",
    )
    env["AWS_REGION"] = env.get("AWS_REGION") or boto3.session.Session().region_name or ""
    return accounts.OrgSettings.from_env(env)


def _alias(guard: Guard) -> str:
    try:
        return iam_api.account_alias(guard.iam)
    except (ClientError, BotoCoreError):
        return ""


def _account_row(would_do: str, reason: str) -> dict[str, Any]:
    """A row about the account itself, so every account audited shows in the table."""
    return {
        "endpoint": "-",
        "production": False,
        "status": "",
        "ssm": {},
        "roles": {},
        "targets": None,
        "exception": None,
        "would_do": would_do,
        "reason": reason,
        "unreachable": {},
        "details": {},
    }


def audit_all_accounts(
    names: Iterable[str], settings: accounts.OrgSettings, *, audit: Audit
) -> list[dict[str, Any]]:
    """`audit` in every member account and region, each row with its account, alias and
    region; an account that cannot be reached is one row saying why."""
    wanted = list(names)
    for name in wanted:
        validate_name(name)
    rows: list[dict[str, Any]] = []
    for unit in accounts.each_member(settings, dry_run=True):
        where = {"account": unit.place.account, "region": unit.place.region, "account_alias": ""}
        if unit.guard is None:
            refusal = unit.refusal or accounts.Refusal(Kind.FAILED, "no guard for the account")
            rows.append({**where, **_account_row(str(refusal.decision), refusal.reason)})
            continue
        where["account_alias"] = _alias(unit.guard)
        try:
            found = audit(unit.guard, wanted)
        except ClientError as exc:
            reason = f"the audit failed there (AWS said {error_code(exc) or 'error'})"
            rows.append({**where, **_account_row(str(Kind.FAILED), reason)})
            continue
        if not found:
            rows.append({**where, **_account_row("-", "no endpoints in this account and region")})
        rows.extend({**where, **row} for row in found)
    return rows


def run_all_accounts(args: argparse.Namespace) -> int:
    from ssm_guard.cli.audit import HEADERS, _cell, audit

    try:
        settings = org_settings(args)
        rows = audit_all_accounts(args.endpoints, settings, audit=audit)
    except (SettingsError, InvalidNameError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if args.json:
        print_json(rows)
    elif rows:
        cells = (
            [
                row["account"] + (f" ({row['account_alias']})" if row["account_alias"] else ""),
                row["region"],
                *_cell(row),
            ]
            for row in rows
        )
        print_table(cells, ("account", "region", *HEADERS))
    else:
        print("no endpoints in any member account and region")
    return EXIT_OK
