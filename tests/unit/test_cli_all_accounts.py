"""`ssm-guard audit --all-accounts`: every member account and region through the member role,
read-only, in one table with an account column; an unreachable member is a row of its own."""

from __future__ import annotations

import json

import pytest
from _org import CENTRAL, MEMBER, OTHER_MEMBER, REGION, AccountOf, broken_member
from _reliability import recording_calls

from ssm_guard.cli.main import main

pytestmark = pytest.mark.unit


@pytest.fixture
def cli_env(central, monkeypatch) -> AccountOf:
    """A person's shell in the central account: none of the functions' variables."""
    for name in ("DEPLOYMENT_ROLE", "GUARD_ACCOUNT_ID", "MEMBER_ACCOUNTS", "GUARDED_REGIONS"):
        monkeypatch.delenv(name, raising=False)
    return central


def _audit(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["audit", "--all-accounts", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_member_account_is_audited_in_one_table(cli_env, capsys, monkeypatch) -> None:
    # GIVEN a member with an alias and an SSM endpoint, and a member whose role is missing
    member = AccountOf(MEMBER)
    member.iam.create_account_alias(AccountAlias="fraud-team")
    member.session_policy()
    member.ssm_endpoint("dev-ep", tags={"environment": "dev"})
    broken_member(monkeypatch, OTHER_MEMBER)
    # WHEN the organization is audited
    with recording_calls() as calls:
        code, out, _ = _audit(capsys, "--json", "--accounts", f"{MEMBER},{OTHER_MEMBER}")
    rows = json.loads(out)
    # THEN each account's endpoints are rows with their account, and nothing was changed
    assert code == 0
    assert calls.mutating() == []
    by_account: dict[str, list[dict]] = {}
    for row in rows:
        by_account.setdefault(row["account"], []).append(row)
    assert sorted(by_account) == sorted([CENTRAL, MEMBER, OTHER_MEMBER])
    (dev,) = by_account[MEMBER]
    assert (dev["endpoint"], dev["would_do"], dev["region"]) == ("dev-ep", "attached", REGION)
    assert dev["account_alias"] == "fraud-team"
    (nothing,) = by_account[CENTRAL]
    assert (nothing["endpoint"], nothing["reason"]) == (
        "-",
        "no endpoints in this account and region",
    )
    (broken,) = by_account[OTHER_MEMBER]
    assert broken["would_do"] == "member-unreachable"
    assert "cannot be assumed" in broken["reason"]


def test_the_table_has_an_account_column(cli_env, capsys) -> None:
    member = AccountOf(MEMBER)
    member.session_policy()
    member.ssm_endpoint("dev-ep")
    code, out, _ = _audit(capsys, "--accounts", MEMBER)
    header = out.splitlines()[0]
    assert code == 0
    assert header.split()[:3] == ["account", "region", "endpoint"]
    assert any(line.startswith(MEMBER) and "dev-ep" in line for line in out.splitlines())


def test_bad_input_is_refused_before_any_aws_call(cli_env, capsys) -> None:
    with recording_calls() as calls:
        bad_name = _audit(capsys, "../etc", "--accounts", MEMBER)
        bad_account = _audit(capsys, "--accounts", "12345")
        bad_region = _audit(capsys, "--accounts", MEMBER, "--regions", "mars-1")
    assert [result[0] for result in (bad_name, bad_account, bad_region)] == [2, 2, 2]
    assert "12 digits" in bad_account[2]
    assert calls.calls == []


@pytest.mark.parametrize(
    "option", [["--accounts", MEMBER], ["--regions", REGION], ["--member-role", "x"]]
)
def test_organization_options_without_all_accounts_are_refused(cli_env, capsys, option) -> None:
    """`audit --accounts 111122223333` used to audit the caller's own account instead, saying
    nothing: a person would take that table for the other account's."""
    with recording_calls() as calls:
        code = main(["audit", *option])
    assert code == 2
    assert "--all-accounts" in capsys.readouterr().err
    assert calls.calls == []


def test_the_environment_still_gives_the_organization_defaults(cli_env, monkeypatch) -> None:
    """MEMBER_ACCOUNTS and friends (a central function's environment) are defaults for
    --all-accounts, not options given: a plain audit in such a shell still runs."""
    monkeypatch.setenv("MEMBER_ACCOUNTS", MEMBER)
    monkeypatch.setenv("GUARDED_REGIONS", REGION)
    assert main(["audit", "--json"]) == 0
