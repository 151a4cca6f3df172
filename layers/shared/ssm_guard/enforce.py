"""Enforcement: an SSM-enabled endpoint's execution roles get the session policy.

The event is only a trigger; `evaluate_endpoint` reads the live endpoint, decides with the pure
functions in `decisions`, then changes IAM only when the decision says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ssm_guard import clients
from ssm_guard.aws import iam as iam_api
from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.aws.errors import error_code, error_message, is_not_found
from ssm_guard.decisions import Kind, Plan, is_production, plan
from ssm_guard.endpoint import EndpointSnapshot
from ssm_guard.observability import count, logger
from ssm_guard.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sagemaker import SageMakerClient


@dataclass
class Guard:
    """What every evaluation needs: the deployer's settings and the AWS clients."""

    settings: Settings
    sagemaker: SageMakerClient
    iam: IAMClient
    dry_run: bool = False
    """Decide and report, change nothing (`ssm-guard audit`, dry runs)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Clients for other services, by service name; tests put stubs here."""
    policy_holders: frozenset[str] | None = None
    """Names of roles known to hold the session policy (the sweep reads them in bulk). Only a
    role found here is taken as holding it; any other is asked live."""

    @classmethod
    def from_env(cls, *, dry_run: bool = False) -> Guard:
        return cls(
            settings=Settings.from_env(),
            sagemaker=clients.sagemaker(),
            iam=clients.iam(),
            dry_run=dry_run,
        )

    def client(self, service: str) -> Any:
        """Any other client (ssm, logs, sns, events, scheduler...), created on first use."""
        if service not in self.overrides:
            self.overrides[service] = clients.client(service)
        return self.overrides[service]


@dataclass
class Outcome:
    """The result of evaluating one endpoint: what the handler returns and the logs say."""

    endpoint_name: str
    decision: Kind
    reason: str = ""
    production: bool = False
    status: str = ""
    ssm_variants: list[str] = field(default_factory=list)
    roles_attached: list[str] = field(default_factory=list)
    roles_compliant: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decision"] = str(self.decision)
        return data


class _QuotaExceededError(Exception):
    def __init__(self, role_arn: str, attached: int, quota: int) -> None:
        super().__init__(role_arn)
        self.role_arn, self.attached, self.quota = role_arn, attached, quota


def _missing_roles(guard: Guard, roles: list[str]) -> tuple[list[str], list[str]]:
    """Split roles into (need the policy, already hold it); raise when one is full."""
    quota: int | None = None
    needed: list[str] = []
    holding: list[str] = []
    for role in roles:
        if guard.policy_holders is not None and iam_api.role_name(role) in guard.policy_holders:
            holding.append(role)
            continue
        attached = iam_api.attached_policy_arns(guard.iam, role)
        if guard.settings.policy_arn in attached:
            holding.append(role)
            continue
        quota = quota if quota is not None else iam_api.attached_policies_quota(guard.iam)
        if len(attached) >= quota:
            raise _QuotaExceededError(role, len(attached), quota)
        needed.append(role)
    return needed, holding


def attach_to_roles(guard: Guard, outcome: Outcome, the_plan: Plan) -> Outcome:
    """Attach the session policy to every role of the plan, or to none of them."""
    roles = list(the_plan.roles)
    try:
        needed, outcome.roles_compliant = _missing_roles(guard, roles)
    except _QuotaExceededError as exc:
        return _quota_outcome(outcome, exc.role_arn, exc.attached, exc.quota)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            outcome.decision = Kind.ROLE_MISSING
            outcome.reason = "an execution role of the endpoint does not exist"
            return outcome
        raise
    if guard.dry_run:
        outcome.roles_attached = needed
        outcome.decision = Kind.ATTACHED if needed else Kind.COMPLIANT
        outcome.reason = (
            "dry run: would attach the session policy"
            if needed
            else ("every execution role already holds the session policy")
        )
        return outcome
    done: list[str] = []
    for role in needed:
        try:
            iam_api.attach_session_policy(guard.iam, role, guard.settings.policy_arn)
        except ClientError as exc:
            _roll_back(guard, done)
            if error_code(exc) == "NoSuchEntity":
                # Deleted between the read and the attach: nothing to attach to.
                outcome.decision = Kind.ROLE_MISSING
                outcome.reason = "an execution role of the endpoint does not exist"
                return outcome
            if error_code(exc) != "LimitExceeded":
                raise
            return _quota_outcome(outcome, role, -1, -1)
        done.append(role)
        logger.info(
            "session policy attached",
            extra={"endpoint_name": outcome.endpoint_name, "role_arn": role},
        )
    outcome.roles_attached = done
    outcome.decision = Kind.ATTACHED if done else Kind.COMPLIANT
    outcome.reason = (
        "session policy attached to the execution roles"
        if done
        else "every execution role already holds the session policy"
    )
    return outcome


def _roll_back(guard: Guard, roles: list[str]) -> None:
    """No half-done state: detach what this evaluation attached before it failed."""
    for role in roles:
        iam_api.detach_session_policy(guard.iam, role, guard.settings.policy_arn)
        logger.warning("session policy attach rolled back", extra={"role_arn": role})


def _quota_outcome(outcome: Outcome, role: str, attached: int, quota: int) -> Outcome:
    outcome.decision = Kind.ROLE_POLICY_QUOTA
    outcome.reason = (
        f"role {role} already holds the maximum number of managed policies; "
        "detach one or raise the IAM quota, then update the endpoint"
    )
    outcome.details = {"role_arn": role, "attached_policies": attached, "quota": quota}
    return outcome


def outcome_for(snapshot: EndpointSnapshot, the_plan: Plan) -> Outcome:
    return Outcome(
        endpoint_name=snapshot.name,
        decision=Kind.NO_SSM,
        production=the_plan.production,
        status=snapshot.status,
        ssm_variants=list(the_plan.ssm_variants),
        unreachable=dict(the_plan.unreachable),
    )


def may_change(snapshot: EndpointSnapshot) -> bool:
    """Can evaluating this snapshot write anything (attach, revert, alert, a re-check)? Only an
    in-service endpoint with SSM access on can; any other is decided from the reads alone."""
    return snapshot.status == "InService" and any(v.ssm_enabled for v in snapshot.variants)


def enforce_snapshot(
    guard: Guard, snapshot: EndpointSnapshot, *, tags_fresh: bool = False
) -> Outcome:
    """Decide and act on a live snapshot (shared by events, the sweep and the CLI).

    `tags_fresh`: the snapshot's tags come from ListTags a moment ago (`read_endpoint`), not
    from a bulk read, so the guardrail does not read them again before a revert.
    """
    the_plan = plan(snapshot, guard.settings)
    outcome = outcome_for(snapshot, the_plan)
    outcome.dry_run = guard.dry_run
    if snapshot.status != "InService":
        outcome.decision = Kind.NOT_IN_SERVICE
        outcome.reason = "the endpoint is not in service; it is evaluated when it is"
    elif not the_plan.ssm_on:
        outcome.reason = "no variant has SSM access on"
    elif the_plan.production or guard.settings.max_ssm_age_hours:
        # Revert, alert, or grant a break-glass exception (monitor mode only alerts).
        from ssm_guard.guardrail import guard_ssm_endpoint

        outcome = guard_ssm_endpoint(guard, snapshot, the_plan, outcome, tags_fresh=tags_fresh)
    elif not the_plan.roles:
        outcome.decision = Kind.SSM_UNREACHABLE
        outcome.reason = "SSM cannot reach any container of the SSM-enabled variants"
    else:
        outcome = attach_to_roles(guard, outcome, the_plan)
    return outcome


def read_live(guard: Guard, name: str) -> EndpointSnapshot | Outcome:
    """The endpoint read live, or the outcome saying it is gone (not an error)."""
    try:
        return sm_api.read_endpoint(guard.sagemaker, name)
    except sm_api.EndpointNotFoundError:
        return Outcome(
            endpoint_name=name, decision=Kind.ENDPOINT_GONE, reason="the endpoint no longer exists"
        )
    except ClientError as exc:
        if is_not_found(exc):
            return unreadable(guard, name, exc)
        raise


def unreadable(guard: Guard, name: str, exc: ClientError) -> Outcome:
    """The endpoint's config or a model of it was not found.

    AWS lets people delete a config or a model an endpoint still runs on. Such an endpoint is
    not gone: it still serves, and whether it has SSM access cannot be read. It is reported
    (and alerted by the handler), never taken for deleted; an endpoint torn down between two
    reads is gone.
    """
    try:
        described = sm_api.describe_endpoint(guard.sagemaker, name)
    except sm_api.EndpointNotFoundError:
        return Outcome(
            endpoint_name=name, decision=Kind.ENDPOINT_GONE, reason="the endpoint no longer exists"
        )
    status = str(described.get("EndpointStatus", ""))
    if status == "Deleting":
        return Outcome(
            endpoint_name=name,
            decision=Kind.ENDPOINT_GONE,
            status=status,
            reason="the endpoint is being deleted",
        )
    arn = str(described["EndpointArn"])
    tags = sm_api.list_tags(guard.sagemaker, arn)
    return Outcome(
        endpoint_name=name,
        decision=Kind.ENDPOINT_UNREADABLE,
        production=is_production(tags, guard.settings),
        status=status,
        reason=(
            "the endpoint runs on a config or model that no longer exists, so its SSM access "
            "cannot be read; update it to an existing config"
        ),
        details={
            "endpoint_arn": arn,
            "config_name": str(described.get("EndpointConfigName", "")),
            "tags": tags,
            "error": error_message(exc),
        },
    )


def evaluate_endpoint(guard: Guard, name: str) -> Outcome:
    """Read the endpoint live and enforce; a vanished endpoint is an outcome, not an error."""
    found = read_live(guard, name)
    if isinstance(found, Outcome):
        return found
    return enforce_snapshot(guard, found, tags_fresh=True)


def record(outcome: Outcome) -> None:
    """One structured log line and one metric per decision."""
    logger.info(
        "endpoint evaluated",
        extra={
            "endpoint_name": outcome.endpoint_name,
            "decision": str(outcome.decision),
            "production": outcome.production,
            "ssm_variants": outcome.ssm_variants,
            "roles_attached": outcome.roles_attached,
            "reason": outcome.reason,
            "unreachable": outcome.unreachable,
        },
    )
    count("Decision_" + str(outcome.decision).replace("-", "_"))
