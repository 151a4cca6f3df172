"""The sweep across an AWS Organization: one unit of work per member account and region.

A small layer over `sweep.py`. In a single-account deployment it is `sweep.on_sweep`, unchanged.
In a central deployment the scheduled run only fans out: it lists the member accounts (the
deployer's MEMBER_ACCOUNTS, else the organization's ACTIVE accounts) and the regions
(GUARDED_REGIONS, else its own), and invokes the sweep function asynchronously once per
(account, region). Lambda is the engine: each unit is its own invocation, with its own time
budget, retries and dead-letter destination, so a slow or broken account holds up no other. A
unit sweeps its account and region through the member role (`sweep.run_sweep`, page hand-overs
included); a member whose role cannot be assumed is reported for that account and alerted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ssm_guard import accounts, clients
from ssm_guard.aws import lambdas as lambda_api
from ssm_guard.aws.errors import error_code
from ssm_guard.decisions import Kind
from ssm_guard.enforce import Guard
from ssm_guard.events import MalformedEventError
from ssm_guard.idempotency import run_once
from ssm_guard.observability import count, logger
from ssm_guard.sweep import SweepState, on_sweep, run_sweep, state_from_event

ORG_MARKER = "ssm-guard-org-sweep"
"""Key of the payload that makes an invocation one (account, region) unit."""

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


@dataclass(frozen=True)
class UnitRequest:
    """What a unit invocation is asked to do: sweep one account and region, from `state` when
    it continues an earlier invocation of the same unit."""

    account: str
    region: str
    run_id: str
    state: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "account": self.account,
            "region": self.region,
            "run_id": self.run_id,
        }
        if self.state is not None:
            body["state"] = self.state
        return {ORG_MARKER: body}

    @classmethod
    def from_payload(cls, raw: object) -> UnitRequest:
        """Read a unit payload; anything else than what `payload` wrote is malformed."""
        if not isinstance(raw, Mapping):
            raise MalformedEventError("the unit is not an object")
        account, region, run_id = raw.get("account"), raw.get("region"), raw.get("run_id")
        if not isinstance(account, str) or not _ACCOUNT_RE.match(account):
            raise MalformedEventError("the unit's account is not a 12-digit account ID")
        if not isinstance(region, str) or not _REGION_RE.match(region):
            raise MalformedEventError("the unit's region is not a region name")
        if not isinstance(run_id, str) or not run_id or len(run_id) > 150:
            raise MalformedEventError("the unit has no run_id")
        state = raw.get("state")
        if state is not None and not isinstance(state, Mapping):
            raise MalformedEventError("the unit's state is not an object")
        return cls(account, region, run_id, dict(state) if state is not None else None)


def plan_units(places: list[accounts.Place], run_id: str) -> list[UnitRequest]:
    """One unit per account and region (pure)."""
    return [UnitRequest(p.account, p.region, run_id) for p in places]


Start = Callable[[UnitRequest], Mapping[str, Any] | None]
"""Starts one unit: an asynchronous self-invocation in Lambda (no result), or the unit run
right here (its result)."""


def _self_invoker(context: Any) -> Start | None:
    function_arn = str(getattr(context, "invoked_function_arn", "") or "")
    if not function_arn:
        return None

    def start(unit: UnitRequest) -> None:
        lambda_api.invoke_async(clients.client("lambda"), function_arn, unit.payload())

    return start


def fan_out(
    event: Mapping[str, Any], settings: accounts.OrgSettings, start: Start
) -> dict[str, Any]:
    """Start one unit per member account and region. When the organization cannot be read, the
    guard's own account is still swept and the failure reported."""
    run_id = state_from_event(event).run_id
    problem = ""
    try:
        places = accounts.places(settings)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        problem = (
            f"the organization's accounts cannot be read (AWS said {code}): only the guard's "
            "own account is swept; give MemberAccounts, or deploy the central stack in the "
            "management or a delegated administrator account"
        )
        logger.error("member accounts unknown", extra={"run_id": run_id, "reason": problem})
        count("MemberAccountsUnknown")
        own = accounts.own_account(settings)
        places = [accounts.Place(own, region) for region in settings.guarded_regions()]
    units = plan_units(places, run_id)
    not_started: list[str] = []
    results: list[Mapping[str, Any]] = []
    for unit in units:
        try:
            result = start(unit)
        except (ClientError, BotoCoreError) as exc:
            not_started.append(f"{unit.account}/{unit.region}")
            logger.error(
                "sweep unit not started",
                extra={"account": unit.account, "region": unit.region, "error": str(exc)},
            )
            continue
        if result is not None:
            results.append(result)
    logger.info(
        "sweep fanned out",
        extra={"run_id": run_id, "units": len(units), "not_started": not_started},
    )
    count("SweepUnitsStarted", len(units) - len(not_started))
    summary: dict[str, Any] = {
        "run_id": run_id,
        "units": len(units),
        "accounts": len({u.account for u in units}),
        "regions": sorted({u.region for u in units}),
        "not_started": not_started,
        "problem": problem,
    }
    if results:
        summary["results"] = [dict(result) for result in results]
    return summary


def run_unit(
    request: UnitRequest,
    settings: accounts.OrgSettings,
    *,
    context: Any = None,
    start: Start | None = None,
) -> dict[str, Any]:
    """Sweep one account and region through its member role; a member the guard cannot reach
    is an outcome (alerted), never an exception, so nothing retries it blindly."""
    place = accounts.Place(request.account, request.region)
    logger.append_keys(account=place.account, region=place.region)
    try:
        guard = accounts.guard_for(place, settings=settings)
    except accounts.AccountRefusedError as exc:
        logger.error(
            "sweep unit refused",
            extra={"decision": str(exc.refusal.decision), "reason": exc.refusal.reason},
        )
        count("Decision_" + str(exc.refusal.decision).replace("-", "_"))
        return accounts.alert_refusal(exc.refusal)
    state = (
        SweepState.from_dict(request.state)
        if request.state is not None
        else SweepState.fresh(f"{request.run_id}:{place.account}:{place.region}")
    )
    logger.append_keys(run_id=state.run_id)
    hand_over: Callable[[SweepState], None] | None = None
    time_left: Callable[[], int] | None = None
    if start is not None and context is not None:
        time_left = context.get_remaining_time_in_millis

        def hand_over(next_state: SweepState) -> None:
            start(UnitRequest(place.account, place.region, request.run_id, next_state.to_dict()))

    report = run_once(
        f"{state.run_id}|{state.page}",
        lambda: run_sweep(guard, state, time_left_ms=time_left, hand_over=hand_over).as_dict(),
        namespace="sweep",
        context=context,
    )
    return {"account": place.account, "region": place.region, **report}


def on_org_sweep(event: Any, context: Any = None, guard: Guard | None = None) -> dict[str, Any]:
    """The work behind the sweep function: `sweep.on_sweep` unless the deployment is central
    (or a guard is given); then a unit, or the fan-out of a scheduled run."""
    settings = accounts.OrgSettings.from_env()
    if not settings.central or guard is not None:
        return on_sweep(event, context, guard)
    start = _self_invoker(context)
    try:
        if isinstance(event, Mapping) and ORG_MARKER in event:
            request = UnitRequest.from_payload(event[ORG_MARKER])
            return run_unit(request, settings, context=context, start=start)
        if not isinstance(event, Mapping):
            raise MalformedEventError("the event is not a JSON object")
        if start is None:
            # Invoked outside Lambda (the CLI, tests): the units run here, one after another.
            return fan_out(event, settings, lambda unit: run_unit(unit, settings))
        return fan_out(event, settings, start)
    except MalformedEventError as exc:
        logger.warning("event rejected", extra={"reason": str(exc)})
        count("MalformedEvent")
        return {"decision": str(Kind.MALFORMED_EVENT), "reason": str(exc)}
