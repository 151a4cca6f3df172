"""`ssm-guard audit [--json] [ENDPOINT...]`: what the guard sees and would do, changing nothing.

The same evaluation as the sweep and the events, with a dry-run guard: for each endpoint, whether
it is production, SSM access per variant, the execution roles and whether they hold the session
policy, the targets published, a break-glass exception and its expiry, and what the guard would
do and why (including why SSM cannot reach a container).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ssm_guard.aws import iam as iam_api
from ssm_guard.aws.errors import error_code
from ssm_guard.cli._deployed import add_stack_option, use_deployed_settings
from ssm_guard.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    print_json,
    print_table,
)
from ssm_guard.decisions import role_for_variant
from ssm_guard.enforce import Guard
from ssm_guard.settings import SettingsError
from ssm_guard.sweep import Evaluation, evaluate_all, evaluate_names

HEADERS = ("endpoint", "prod", "status", "ssm", "roles", "targets", "exception", "would do", "why")
UNKNOWN = "?"


def _policy_arn(guard: Guard, given: str | None) -> str:
    """--policy-arn, else SESSION_POLICY_ARN, else the stack's policy by its name (NamePrefix)."""
    if given or guard.settings.policy_arn:
        return given or guard.settings.policy_arn
    account = guard.client("sts").get_caller_identity()["Account"]
    partition = "aws-cn" if guard.sagemaker.meta.region_name.startswith("cn-") else "aws"
    name = f"{guard.settings.name_prefix}-sagemaker-ssm-session-{guard.sagemaker.meta.region_name}"
    return f"arn:{partition}:iam::{account}:policy/{name}"


def _holders(guard: Guard, policy_arn: str) -> frozenset[str] | None:
    """Role names holding the policy; None when that cannot be read (no policy, no permission)."""
    try:
        return iam_api.roles_holding_policy(guard.iam, policy_arn)
    except ClientError as exc:
        if error_code(exc) in {"NoSuchEntity", "AccessDenied", "AccessDeniedException"}:
            return None
        raise


def _targets(guard: Guard) -> Mapping[str, Any] | None:
    """Published targets by endpoint; None when Parameter Store cannot be read."""
    from ssm_guard.discovery import read_all_published

    try:
        return read_all_published(guard)
    except ClientError as exc:
        if error_code(exc) in {"AccessDenied", "AccessDeniedException"}:
            return None
        raise


def audit_row(
    evaluation: Evaluation,
    *,
    guard: Guard,
    holders: frozenset[str] | None,
    published: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """One endpoint as plain data (the JSON output; the table prints a digest of it)."""
    from ssm_guard.exceptions import judge_exception

    outcome, snapshot = evaluation.outcome, evaluation.snapshot
    row: dict[str, Any] = {
        "endpoint": evaluation.name,
        "production": outcome.production,
        "status": outcome.status or (snapshot.status if snapshot else ""),
        "ssm": {},
        "roles": {},
        "targets": None,
        "exception": None,
        "would_do": str(outcome.decision),
        "reason": outcome.reason,
        "unreachable": dict(outcome.unreachable),
        "details": dict(outcome.details),
    }
    if snapshot is None:
        return row
    row["ssm"] = {v.name: v.ssm_enabled for v in snapshot.variants}
    for variant in snapshot.ssm_variants:
        role = role_for_variant(snapshot, variant)
        if role and variant.name not in outcome.unreachable:
            name = iam_api.role_name(role)
            row["roles"][role] = None if holders is None else name in holders
    if published is not None:
        found = published.get(evaluation.name)
        document = getattr(found, "document", None)
        row["targets"] = len(document.targets) if document is not None else 0
    status = judge_exception(
        snapshot.tags,
        tag_key=guard.settings.exception_tag_key,
        max_hours=guard.settings.max_exception_hours,
        now=now,
    )
    if str(status.verdict) != "none":
        row["exception"] = {
            "verdict": str(status.verdict),
            "until": status.until_text,
            "reason": status.reason,
        }
    return row


def _cell(row: Mapping[str, Any]) -> list[str]:
    ssm = " ".join(f"{v}={'on' if on else 'off'}" for v, on in row["ssm"].items()) or "-"
    roles = (
        " ".join(
            f"{iam_api.role_name(r)}:{UNKNOWN if h is None else ('holds' if h else 'missing')}"
            for r, h in row["roles"].items()
        )
        or "-"
    )
    targets = UNKNOWN if row["targets"] is None else str(row["targets"])
    exception = row["exception"]
    exception_text = (
        f"{exception['verdict']} {exception['until'] or ''}".strip() if exception else "-"
    )
    why = row["reason"]
    if row["unreachable"]:
        why = "; ".join([why, *(f"{v}: {r}" for v, r in sorted(row["unreachable"].items()))])
    return [
        row["endpoint"],
        "yes" if row["production"] else "no",
        row["status"],
        ssm,
        roles,
        targets,
        exception_text,
        row["would_do"],
        why,
    ]


def audit(
    guard: Guard, names: Iterable[str], *, policy_arn: str | None = None
) -> list[dict[str, Any]]:
    """Rows for the named endpoints, or for every endpoint when no name is given."""
    wanted = list(names)
    guard.dry_run = True
    holders = _holders(guard, _policy_arn(guard, policy_arn))
    guard.policy_holders = holders
    published = _targets(guard)
    evaluations = evaluate_names(guard, wanted) if wanted else evaluate_all(guard)
    now = datetime.now(UTC)
    return [
        audit_row(e, guard=guard, holders=holders, published=published, now=now)
        for e in evaluations
    ]


def run(args: argparse.Namespace) -> int:
    from ssm_guard.cli._all_accounts import ORG_OPTIONS

    if args.all_accounts:
        from ssm_guard.cli._all_accounts import run_all_accounts

        return run_all_accounts(args)
    given = [f"--{o.replace('_', '-')}" for o in ORG_OPTIONS if getattr(args, o) is not None]
    if given:
        raise CliError(
            "--accounts, --regions and --member-role work only with --all-accounts "
            f"(given: {' '.join(given)})",
            EXIT_USAGE,
        )
    use_deployed_settings(args)
    try:
        guard = Guard.from_env(dry_run=True)
    except SettingsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    try:
        rows = audit(guard, args.endpoints, policy_arn=args.policy_arn)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if args.json:
        print_json(rows)
    elif rows:
        print_table((_cell(row) for row in rows), HEADERS)
    else:
        print("no endpoints in this account and region")
    missing = [row["endpoint"] for row in rows if row.get("would_do") == "endpoint-gone"]
    if args.endpoints and missing:
        # A script that names an endpoint must be able to tell a typo from a clean audit.
        print(f"ssm-guard: no endpoint named {', '.join(missing)} here", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="show what the guard sees and would do for each endpoint (changes nothing)",
        description=(
            "Evaluate endpoints exactly as the guard does, read-only: production or not, SSM "
            "per variant, roles holding the session policy, targets published, exceptions, and "
            "what the guard would do."
        ),
    )
    parser.add_argument("endpoints", nargs="*", metavar="ENDPOINT", help="default: all")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_stack_option(parser)
    parser.add_argument(
        "--policy-arn",
        default=os.environ.get("SESSION_POLICY_ARN"),
        help="the guard's session policy (default: SESSION_POLICY_ARN, else found by name)",
    )
    from ssm_guard.cli._all_accounts import add_arguments

    add_arguments(parser)
    parser.set_defaults(func=run)
