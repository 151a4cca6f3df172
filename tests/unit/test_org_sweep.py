"""The sweep across an organization: one unit of work per member account and region, each in
its own invocation; a broken member is reported, the others are swept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _handler_runs import FakeContext
from _org import CENTRAL, MEMBER, OTHER_MEMBER, REGION, AccountOf, broken_member

from ssm_guard import org_sweep
from ssm_guard.accounts import OrgSettings
from ssm_guard.org_sweep import ORG_MARKER, UnitRequest, fan_out, on_org_sweep, run_unit
from ssm_guard.sweep import SweepState

pytestmark = pytest.mark.unit

SCHEDULED = {
    "version": "0",
    "id": "run-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": CENTRAL,
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:{CENTRAL}:rule/ssm-guard-sweep"],
    "detail": {},
}


@pytest.fixture
def org(central, monkeypatch) -> AccountOf:
    """The central deployment of test_accounts, sweeping two regions."""
    monkeypatch.setenv("GUARDED_REGIONS", f"{REGION},eu-west-1")
    return central


def test_a_scheduled_run_starts_one_unit_per_member_account_and_region(org) -> None:
    # GIVEN a way to see what the run starts (Lambda invokes the sweep again, asynchronously)
    started: list[UnitRequest] = []

    def start(unit: UnitRequest) -> None:
        started.append(unit)

    # WHEN the schedule fires
    summary = fan_out(SCHEDULED, OrgSettings.from_env(), start)
    # THEN every account (the central one too) in every guarded region is one unit of the run
    assert summary["units"] == 6
    assert summary["accounts"] == 3
    assert summary["regions"] == ["eu-west-1", REGION]
    assert {(u.account, u.region) for u in started} == {
        (account, region)
        for account in (CENTRAL, MEMBER, OTHER_MEMBER)
        for region in (REGION, "eu-west-1")
    }
    assert {u.run_id for u in started} == {"run-1"}


def test_in_lambda_each_unit_is_an_asynchronous_invocation_of_the_sweep(org, monkeypatch) -> None:
    # GIVEN the sweep running in Lambda
    invoked: list[tuple[str, dict[str, Any]]] = []

    def invoke_async(client: Any, function_arn: str, payload: dict[str, Any]) -> None:
        invoked.append((function_arn, json.loads(json.dumps(payload))))

    monkeypatch.setattr(org_sweep.lambda_api, "invoke_async", invoke_async)
    # WHEN the schedule fires
    on_org_sweep(SCHEDULED, FakeContext())
    # THEN the function invoked itself once per unit, with the unit's payload
    assert len(invoked) == 6
    assert {arn for arn, _ in invoked} == {FakeContext.invoked_function_arn}
    units = [UnitRequest.from_payload(payload[ORG_MARKER]) for _, payload in invoked]
    assert {(u.account, u.region) for u in units} == {
        (a, r) for a in (CENTRAL, MEMBER, OTHER_MEMBER) for r in (REGION, "eu-west-1")
    }


def test_a_unit_sweeps_its_member_account_and_a_broken_member_is_reported(
    org, alert_inbox, monkeypatch
) -> None:
    # GIVEN a member with an SSM endpoint whose role lacks the session policy, and a member
    # whose role cannot be assumed
    member = AccountOf(MEMBER)
    policy = member.session_policy()
    role = member.ssm_endpoint("dev-ep", tags={"environment": "dev"})
    broken_member(monkeypatch, OTHER_MEMBER)
    settings = OrgSettings.from_env()
    # WHEN both units run
    broken = run_unit(UnitRequest(OTHER_MEMBER, REGION, "run-1"), settings)
    swept = run_unit(UnitRequest(MEMBER, REGION, "run-1"), settings)
    # THEN the broken member is an outcome for that account, alerted...
    assert broken["decision"] == "member-unreachable"
    assert broken["account"] == OTHER_MEMBER
    (message,) = alert_inbox.sns()
    assert OTHER_MEMBER in message["Subject"]
    # ...and the other member was swept: its role now holds its own session policy
    assert swept["account"] == MEMBER
    assert swept["finished"] is True
    assert swept["endpoints"] == 1
    assert member.attached(role) == [policy]


def test_a_unit_hands_its_next_page_to_a_unit_of_the_same_account(org, monkeypatch) -> None:
    # GIVEN a sweep that runs short of time after its first page
    started: list[UnitRequest] = []

    def run_sweep(guard: Any, state: SweepState, **kwargs: Any) -> Any:
        state.page, state.token = 1, "next-page"
        kwargs["hand_over"](state)

        class Report:
            def as_dict(self) -> dict[str, Any]:
                return {"finished": False}

        return Report()

    monkeypatch.setattr(org_sweep, "run_sweep", run_sweep)
    # WHEN a unit runs in Lambda
    result = run_unit(
        UnitRequest(MEMBER, REGION, "run-1"),
        OrgSettings.from_env(),
        context=FakeContext(),
        start=started.append,
    )
    # THEN the continuation is a unit of the same account and region, carrying the state
    assert result["finished"] is False
    (continued,) = started
    assert (continued.account, continued.region, continued.run_id) == (MEMBER, REGION, "run-1")
    state = SweepState.from_dict(continued.state)
    assert (state.page, state.token) == (1, "next-page")
    assert state.run_id == f"run-1:{MEMBER}:{REGION}"


def test_invoked_outside_lambda_the_units_run_in_turn(org) -> None:
    member = AccountOf(MEMBER)
    member.session_policy()
    result = on_org_sweep(SCHEDULED)
    assert result["units"] == 6
    assert {r["account"] for r in result["results"]} == {CENTRAL, MEMBER, OTHER_MEMBER}


@pytest.mark.parametrize(
    "unit",
    [
        {"account": "1", "region": REGION, "run_id": "r"},
        {"account": MEMBER, "region": "nowhere", "run_id": "r"},
        {"account": MEMBER, "region": REGION},
        {"account": MEMBER, "region": REGION, "run_id": "r", "state": "page 2"},
        "not a unit",
    ],
)
def test_a_malformed_unit_changes_nothing(org, unit: Any) -> None:
    result = on_org_sweep({ORG_MARKER: unit})
    assert result["decision"] == "malformed-event"


def test_a_single_account_sweep_is_the_plain_sweep(account, guard, monkeypatch) -> None:
    # GIVEN the default deployment
    monkeypatch.delenv("DEPLOYMENT_ROLE", raising=False)
    called: list[Any] = []
    monkeypatch.setattr(org_sweep, "on_sweep", lambda *args: called.append(args) or {"ok": 1})
    # WHEN the schedule fires
    result = on_org_sweep(SCHEDULED, None)
    # THEN it is sweep.on_sweep, unchanged
    assert result == {"ok": 1}
    assert called == [(SCHEDULED, None, None)]
