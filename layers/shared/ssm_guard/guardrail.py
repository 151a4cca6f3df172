"""The production guardrail: take SSM access back from production endpoints, safely, and say so.

`enforce_snapshot` hands over every in-service endpoint with SSM access on that is tagged
production (or, when a maximum SSM age is set, any endpoint with SSM on). Then:

- enforce mode: a faithful copy of the config with SSM off (`clone.clone_without_ssm`), then
  `UpdateEndpoint` to it with `RetainAllVariantProperties`, so autoscaled instance counts and
  weights stay as they are; the session policy leaves roles no other SSM endpoint uses; alert.
- monitor mode: alert only, and attach the session policy so SSM works meanwhile.
- a valid break-glass exception: attach, alert once, and re-check at expiry (one-time schedule).

Our own update causes more events (the endpoint's UPDATING and IN_SERVICE, the new config's
state change): each ends as a no-op because the live config then has SSM off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from ssm_guard import alerts, usage
from ssm_guard.aws import iam as iam_api
from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.aws import scheduler as scheduler_api
from ssm_guard.aws.errors import (
    error_code,
    error_message,
    is_in_progress,
    is_not_found,
    is_throttling,
)
from ssm_guard.clone import (
    CREATED_BY_TAG,
    CREATED_BY_VALUE,
    GUARD_NAME_FRAGMENT,
    CloneError,
    clone_without_ssm,
    is_guard_config_name,
    matches_intent,
)
from ssm_guard.decisions import Kind, Plan, plan
from ssm_guard.endpoint import EndpointSnapshot
from ssm_guard.enforce import Guard, Outcome, attach_to_roles, outcome_for
from ssm_guard.exceptions import (
    ExceptionStatus,
    Verdict,
    iso,
    judge_exception,
    recheck_time,
    schedule_name,
    ssm_age_deadline,
)
from ssm_guard.names import SAGEMAKER_NAME_RE
from ssm_guard.observability import count, logger
from ssm_guard.settings import Settings
from ssm_guard.triggers import recheck_event

# Cleanup leaves alone configs younger than this: a concurrent revert may be about to use one.
CLEANUP_MIN_AGE = timedelta(hours=1)


class Action(StrEnum):
    ALLOW = "allow"
    GRANT = "grant"
    TAKE_BACK = "take-back"


@dataclass(frozen=True)
class GuardrailDecision:
    """What to do with an in-service endpoint that has SSM access on (pure data)."""

    action: Action
    why: str
    exception: ExceptionStatus
    kind: Kind | None = None
    """The decision to report when access is taken back (default: reverted / alerted)."""
    recheck_at: datetime | None = None
    recheck_reason: str | None = None


def decide_guardrail(
    snapshot: EndpointSnapshot, production: bool, settings: Settings, now: datetime
) -> GuardrailDecision:
    """Pure: production endpoints keep SSM only under a valid exception; others only while
    younger than MAX_SSM_AGE_HOURS (when set) or under a valid exception."""
    status = judge_exception(
        snapshot.tags,
        tag_key=settings.exception_tag_key,
        max_hours=settings.max_exception_hours,
        now=now,
    )
    if status.verdict is Verdict.GRANTED:
        action = Action.GRANT if production else Action.ALLOW
        return GuardrailDecision(action, status.reason, status, None, status.until, "expiry")
    if production:
        if status.verdict is Verdict.EXPIRED:
            return GuardrailDecision(
                Action.TAKE_BACK, status.reason, status, Kind.EXCEPTION_EXPIRED
            )
        if status.verdict is Verdict.REFUSED:
            why = f"the SSM exception was refused: {status.reason}"
            return GuardrailDecision(Action.TAKE_BACK, why, status, Kind.EXCEPTION_REFUSED)
        why = "SSM access is on for an endpoint tagged as production"
        return GuardrailDecision(Action.TAKE_BACK, why, status)
    deadline = ssm_age_deadline(snapshot.last_modified_ms, settings.max_ssm_age_hours)
    if deadline is None:
        return GuardrailDecision(Action.ALLOW, "no SSM age limit applies", status)
    if now < deadline:
        return GuardrailDecision(
            Action.ALLOW, f"SSM access allowed until {iso(deadline)}", status, None, deadline, "age"
        )
    why = (
        f"SSM access has been on for more than {settings.max_ssm_age_hours} hours "
        f"(MAX_SSM_AGE_HOURS; since {iso(deadline - timedelta(hours=settings.max_ssm_age_hours))})"
    )
    return GuardrailDecision(Action.TAKE_BACK, why, status)


@dataclass(frozen=True)
class RecheckTarget:
    """The function a one-time re-check schedule invokes (the enforcer), the role Scheduler
    invokes it with, and the schedule group: RECHECK_FUNCTION_ARN, RECHECK_ROLE_ARN,
    RECHECK_SCHEDULE_GROUP; the retry settings (retry.py, RETRY_*) serve when those are unset,
    as both invoke the enforcer the same way."""

    function_arn: str
    role_arn: str
    group: str = "default"

    @classmethod
    def from_env(
        cls, endpoint_arn: str, environ: Mapping[str, str] | None = None
    ) -> RecheckTarget | None:
        """None when no scheduler role is configured (the CLI, tests). Without a configured
        target, the running function invokes itself: its ARN is built from
        AWS_LAMBDA_FUNCTION_NAME and the guard's account (GUARD_ACCOUNT_ID; else the
        endpoint's, beside which a single-account guard runs), since a function's environment
        cannot name its own ARN without a cycle in the template."""
        env = os.environ if environ is None else environ

        def setting(name: str) -> str:
            return env.get(f"RECHECK_{name}", "") or env.get(f"RETRY_{name}", "")

        role = setting("ROLE_ARN")
        function_arn = env.get("RECHECK_FUNCTION_ARN", "") or setting("TARGET_ARN")
        function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        if not function_arn and function_name:
            parts = alerts.arn_parts(endpoint_arn)
            region = env.get("AWS_REGION") or parts.region
            account = env.get("GUARD_ACCOUNT_ID") or parts.account
            function_arn = (
                f"arn:{parts.partition}:lambda:{region}:{account}:function:{function_name}"
            )
        if not (role and function_arn):
            return None
        return cls(function_arn, role, setting("SCHEDULE_GROUP") or "default")


def _now() -> datetime:
    return datetime.now(UTC)


def guard_ssm_endpoint(
    guard: Guard,
    snapshot: EndpointSnapshot,
    the_plan: Plan,
    outcome: Outcome,
    *,
    now: datetime | None = None,
    tags_fresh: bool = False,
) -> Outcome:
    """Decide and act on an in-service endpoint with SSM access on (see the module docstring).

    Before taking access back, the tags are read again from ListTags: the snapshot's may come
    from a bulk read minutes old, and an exception may have been tagged since.
    """
    now = now or _now()
    decision = decide_guardrail(snapshot, the_plan.production, guard.settings, now)
    if decision.exception.verdict is not Verdict.NONE:
        outcome.details["exception"] = {
            "verdict": str(decision.exception.verdict),
            "reason": decision.exception.reason,
            "until": decision.exception.until_text,
        }
    if decision.action is Action.ALLOW:
        outcome = _allow(guard, the_plan, outcome)
        if decision.recheck_at and decision.recheck_reason:
            _schedule_recheck(
                guard, snapshot, outcome, decision.recheck_at, decision.recheck_reason
            )
        return outcome
    if decision.action is Action.GRANT:
        return _grant(guard, snapshot, the_plan, outcome, decision, now)
    if guard.settings.guardrail_mode == "monitor":
        return _monitor(guard, snapshot, the_plan, outcome, decision, now)
    if not tags_fresh and not guard.dry_run:
        fresh = sm_api.list_tags(guard.sagemaker, snapshot.arn)
        if fresh != dict(snapshot.tags):
            logger.info("tags changed before revert", extra={"endpoint_name": snapshot.name})
            again = replace(snapshot, tags=fresh)
            again_plan = plan(again, guard.settings)
            again_outcome = outcome_for(again, again_plan)
            if not again_plan.production and not guard.settings.max_ssm_age_hours:
                return _allow(guard, again_plan, again_outcome)
            return guard_ssm_endpoint(
                guard, again, again_plan, again_outcome, now=now, tags_fresh=True
            )
    return revert(guard, snapshot, the_plan, outcome, decision, now)


def _allow(guard: Guard, the_plan: Plan, outcome: Outcome) -> Outcome:
    """What the guard does for any SSM endpoint: the session policy on its roles."""
    if not the_plan.roles:
        outcome.decision = Kind.SSM_UNREACHABLE
        outcome.reason = "SSM cannot reach any container of the SSM-enabled variants"
        return outcome
    return attach_to_roles(guard, outcome, the_plan)


def _grant(
    guard: Guard,
    snapshot: EndpointSnapshot,
    the_plan: Plan,
    outcome: Outcome,
    decision: GuardrailDecision,
    now: datetime,
) -> Outcome:
    outcome = _allow(guard, the_plan, outcome)
    attach = outcome.decision
    if attach in (Kind.ATTACHED, Kind.COMPLIANT, Kind.SSM_UNREACHABLE):
        outcome.decision = Kind.EXCEPTION_GRANTED
        outcome.reason = f"break-glass exception: {decision.why}"
    outcome.details.update(action="attached", attach=str(attach))
    new = None
    if decision.recheck_at is not None:
        new = _schedule_recheck(guard, snapshot, outcome, decision.recheck_at, "expiry")
    if new is False:
        # The expiry was scheduled by an earlier evaluation, which also alerted.
        outcome.details["alert"] = "already-sent"
        return outcome
    _alert(guard, snapshot, outcome, now)
    return outcome


def _monitor(
    guard: Guard,
    snapshot: EndpointSnapshot,
    the_plan: Plan,
    outcome: Outcome,
    decision: GuardrailDecision,
    now: datetime,
) -> Outcome:
    """Monitor mode: never touch the endpoint; alert, and let SSM work meanwhile."""
    outcome = _allow(guard, the_plan, outcome)
    outcome.details.update(action="alerted", attach=str(outcome.decision))
    outcome.decision = decision.kind or Kind.ALERTED
    outcome.reason = f"{decision.why}; monitor mode: alerted, endpoint left as it is"
    _alert(guard, snapshot, outcome, now)
    return outcome


@dataclass(frozen=True)
class Applied:
    """How pointing an endpoint at a new config went."""

    status: str
    """`updated`, `busy` (try again later), `gone`, `failed` or `name-taken`."""
    config_name: str
    created: bool = False
    error: str = ""


def apply_config(guard: Guard, endpoint_name: str, kwargs: dict[str, Any]) -> Applied:
    """Create the config (or reuse the one an earlier attempt made under the same derived name),
    then UpdateEndpoint to it, keeping live instance counts and weights.

    The create comes first: AWS refuses a name that exists, and only then is the existing config
    read to check it is our copy. A first attempt (the usual case) so saves a describe.
    """
    name = str(kwargs["EndpointConfigName"])
    created = False
    existing: dict[str, Any] | None = None
    try:
        sm_api.create_endpoint_config(guard.sagemaker, kwargs)
        created = True
    except ClientError as exc:
        if "already exist" not in error_message(exc).lower():
            return Applied("failed", name, error=_explain(exc))
        existing = _describe_config(guard, name)
    if existing is not None and not matches_intent(existing, kwargs):
        return Applied("name-taken", name, error="a config with the derived name differs")
    try:
        sm_api.update_endpoint(guard.sagemaker, endpoint_name, name)
    except ClientError as exc:
        if is_in_progress(exc):
            return Applied("busy", name, created, _explain(exc))
        if is_not_found(exc):
            if "configuration" in error_message(exc).lower():
                # Reads right after CreateEndpointConfig are eventually consistent (aws-facts 2.3).
                return Applied("busy", name, created, _explain(exc))
            return Applied("gone", name, created, _explain(exc))
        if is_throttling(exc):
            raise
        return Applied("failed", name, created, _explain(exc))
    return Applied("updated", name, created)


def _explain(exc: ClientError) -> str:
    return f"{error_code(exc)}: {error_message(exc)}"


def _describe_config(guard: Guard, name: str) -> dict[str, Any] | None:
    try:
        return sm_api.describe_endpoint_config(guard.sagemaker, name)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def revert(
    guard: Guard,
    snapshot: EndpointSnapshot,
    the_plan: Plan,
    outcome: Outcome,
    decision: GuardrailDecision,
    now: datetime,
) -> Outcome:
    """Point the endpoint at a faithful copy of its config with SSM access off."""
    done = decision.kind or Kind.REVERTED
    config_arn = str(snapshot.config.get("EndpointConfigArn") or "")
    config_tags = sm_api.list_tags(guard.sagemaker, config_arn) if config_arn else {}
    outcome.details.update(old_config=snapshot.config_name)
    try:
        kwargs = clone_without_ssm(snapshot.config, config_tags)
    except CloneError as exc:
        return _failed(
            guard, snapshot, outcome, decision, now, f"the config cannot be copied: {exc}"
        )
    new_name = str(kwargs["EndpointConfigName"])
    outcome.details["new_config"] = new_name
    if guard.dry_run:
        outcome.decision = done
        outcome.reason = f"dry run: would revert to {new_name}; {decision.why}"
        outcome.details["action"] = "would-revert"
        return outcome
    applied = apply_config(guard, snapshot.name, kwargs)
    logger.info(
        "revert attempted",
        extra={
            "endpoint_name": snapshot.name,
            "old_config": snapshot.config_name,
            "new_config": new_name,
            "status": applied.status,
            "config_created": applied.created,
        },
    )
    if applied.status == "updated":
        outcome.decision = done
        outcome.reason = f"{decision.why}; reverted to a copy of the config with SSM access off"
        outcome.details["action"] = "reverted"
        outcome.details["roles_detached"] = release_roles(guard, snapshot, the_plan.roles)
        count("Reverted")
        _alert(guard, snapshot, outcome, now)
        return outcome
    if applied.status == "busy":
        # The handler schedules the retry (retry.follow_up); the IN_SERVICE event that ends
        # the update in progress brings the endpoint back here too. The config made stays for
        # the retry, which finds it under the same name.
        outcome.decision = Kind.RETRY_LATER
        outcome.reason = f"{decision.why}; the endpoint is busy, the revert is tried again later"
        outcome.details.update(action="retry-later", error=applied.error)
        return outcome
    if applied.created:
        delete_if_unused(guard, new_name)
    if applied.status == "gone":
        outcome.decision = Kind.ENDPOINT_GONE
        outcome.reason = "the endpoint was deleted before the revert"
        return outcome
    return _failed(guard, snapshot, outcome, decision, now, applied.error)


def _failed(
    guard: Guard,
    snapshot: EndpointSnapshot,
    outcome: Outcome,
    decision: GuardrailDecision,
    now: datetime,
    error: str,
) -> Outcome:
    """A revert a retry cannot fix: alert people, leave the endpoint as it is."""
    outcome.decision = Kind.REVERT_FAILED
    outcome.reason = f"{decision.why}; the revert failed, the endpoint is unchanged"
    outcome.details.update(action="none", error=error)
    logger.error(
        "revert failed",
        extra={"endpoint_name": snapshot.name, "error": error},
    )
    _alert(guard, snapshot, outcome, now)
    return outcome


def _alert(guard: Guard, snapshot: EndpointSnapshot, outcome: Outcome, now: datetime) -> None:
    if guard.dry_run:
        outcome.details["alert"] = "skipped"
        return
    alert = alerts.alert_for(
        outcome,
        snapshot,
        mode=guard.settings.guardrail_mode,
        now=now,
        enabled_by=alerts.who_enabled(guard, snapshot, now),
    )
    outcome.details["alert"] = alerts.send(guard, alert)
    outcome.details["alert_subject"] = alert.subject


def _schedule_recheck(
    guard: Guard, snapshot: EndpointSnapshot, outcome: Outcome, moment: datetime, reason: str
) -> bool | None:
    """A one-time schedule that invokes the enforcer with a re-check event just after `moment`.
    True when created, False when it already existed, None when none was made (dry run, no
    scheduler configured, or an error, which is logged)."""
    target = RecheckTarget.from_env(snapshot.arn)
    when = recheck_time(moment)
    if guard.dry_run or target is None:
        return None
    name = schedule_name(guard.settings.name_prefix, snapshot.arn, reason, when)
    try:
        created = scheduler_api.create_one_time_invoke(
            guard.client("scheduler"),
            name=name,
            group=target.group,
            at=when,
            target_arn=target.function_arn,
            role_arn=target.role_arn,
            payload=recheck_event(snapshot.name, snapshot.arn, reason),
        )
    except ClientError as exc:
        count("RecheckScheduleFailed")
        logger.error(
            "recheck not scheduled",
            extra={"endpoint_name": snapshot.name, "reason": reason, "error": _explain(exc)},
        )
        return None
    outcome.details["recheck_at"] = iso(when)
    logger.info(
        "recheck scheduled",
        extra={"endpoint_name": snapshot.name, "reason": reason, "at": iso(when), "new": created},
    )
    return created


# Which configs and roles other endpoints use (for cleanup and for detaching the policy): read
# from Search by `usage.in_use`, which stops as soon as what it looks for is found in use.


def release_roles(guard: Guard, snapshot: EndpointSnapshot, roles: Iterable[str]) -> list[str]:
    """Detach the session policy from the reverted endpoint's roles that hold it, unless another
    SSM-enabled endpoint still uses the role. When in doubt (a read fails), keep the policy."""
    endpoint_name = snapshot.name
    policy = guard.settings.policy_arn
    holding: list[str] = []
    for role in roles:
        try:
            if policy in iam_api.attached_policy_arns(guard.iam, role):
                holding.append(role)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
    if not holding:
        return []
    wanted = usage.Wanted(roles=frozenset(iam_api.role_name(role) for role in holding))
    try:
        in_use = usage.in_use(guard, wanted, exclude=endpoint_name, known=snapshot).roles
    except ClientError as exc:
        logger.warning(
            "session policy kept",
            extra={"endpoint_name": endpoint_name, "roles": holding, "error": _explain(exc)},
        )
        return []
    detached: list[str] = []
    for role in holding:
        if iam_api.role_name(role) in in_use:
            logger.info("session policy kept", extra={"role_arn": role, "reason": "in use"})
            continue
        iam_api.detach_session_policy(guard.iam, role, policy)
        detached.append(role)
        logger.info("session policy detached", extra={"role_arn": role})
    return detached


def _is_ours(guard: Guard, config: Mapping[str, Any]) -> bool:
    name = str(config.get("EndpointConfigName", ""))
    arn = config.get("EndpointConfigArn")
    if not is_guard_config_name(name) or not isinstance(arn, str):
        return False
    return sm_api.list_tags(guard.sagemaker, arn).get(CREATED_BY_TAG) == CREATED_BY_VALUE


def delete_if_unused(guard: Guard, config_name: str) -> bool:
    """Delete a config the guard created when no endpoint runs on it or is being updated to it.
    AWS lets an in-use config be deleted (the endpoint then loses sight of its instance type),
    so the check is ours to make."""
    config = _describe_config(guard, config_name)
    if config is None or not _is_ours(guard, config):
        return False
    found = usage.in_use(guard, usage.Wanted(configs=frozenset({config_name})))
    users = sorted(found.configs.get(config_name, ()))
    if users:
        logger.info("config kept", extra={"config_name": config_name, "used_by": users})
        return False
    sm_api.delete_endpoint_config(guard.sagemaker, config_name)
    count("ConfigCleanedUp")
    logger.info("unused config deleted", extra={"config_name": config_name})
    return True


def cleanup_unused_configs(guard: Guard, *, now: datetime | None = None) -> list[str]:
    """Account-wide: delete the configs the guard created (derived name and created-by tag) that
    no endpoint uses, older than CLEANUP_MIN_AGE. Meant for the scheduled sweep. Returns their
    names; in a dry run, the names it would delete."""
    now = now or _now()
    candidates = [
        c
        for c in sm_api.list_endpoint_configs(guard.sagemaker, name_contains=GUARD_NAME_FRAGMENT)
        if is_guard_config_name(str(c.get("EndpointConfigName", "")))
        and isinstance(c.get("CreationTime"), datetime)
        and c["CreationTime"] <= now - CLEANUP_MIN_AGE
    ]
    if not candidates:
        return []
    names = frozenset(str(c["EndpointConfigName"]) for c in candidates)
    used = usage.in_use(guard, usage.Wanted(configs=names)).configs
    deleted: list[str] = []
    for summary in candidates:
        name = str(summary["EndpointConfigName"])
        if name in used or not _is_ours(guard, summary):
            continue
        deleted.append(name)
        if guard.dry_run:
            continue
        sm_api.delete_endpoint_config(guard.sagemaker, name)
        count("ConfigCleanedUp")
        logger.info("unused config deleted", extra={"config_name": name})
    return deleted


def resolve_endpoint_name(guard: Guard, arn: str) -> str | None:
    """The endpoint an ARN names. The ARN holds the name lower-cased (aws-facts 1.2), so try it
    as is, then look for the endpoint whose ARN matches."""
    guess = arn.split(":endpoint/", 1)[-1]
    if not SAGEMAKER_NAME_RE.match(guess):
        return None
    try:
        described = sm_api.describe_endpoint(guard.sagemaker, guess)
    except sm_api.EndpointNotFoundError:
        described = {}
    if str(described.get("EndpointArn", "")).lower() == arn.lower():
        return str(described["EndpointName"])
    for name in sm_api.list_endpoint_names(guard.sagemaker):
        if name.lower() == guess.lower():
            return name
    return None
