"""One guard for a whole AWS Organization: which account and region an event is about, and a
Guard whose clients act there.

A deployment is `single`, `central` or `member` (template parameter DeploymentRole, variable
DEPLOYMENT_ROLE). Single is the default: the functions act in their own account and region and
nothing here changes that (no AWS call, the same `Guard.from_env()`). In a central deployment,
member stacks forward the SageMaker events the guard needs to the central bus and hold the
member role (MEMBER_ROLE_NAME, the same name in every account); the central functions act in the
account and region each event came from, through that role: the session policy attaches to that
account's roles, targets go to its Parameter Store, reverts update its endpoint. Alerts go to the
central topic and name the account and its alias.

Safety, before anything is read or changed:
- an event from an account that is not a member (not in MEMBER_ACCOUNTS when the deployer gives
  the list, else not an ACTIVE account of the organization), from an account whose membership
  cannot be read, or whose account disagrees with the resource it names, changes nothing and is
  alerted (`refused`, `alert_refusal`);
- a member role that cannot be assumed is an outcome for that account (`member-unreachable`);
  other accounts carry on.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ssm_guard import clients
from ssm_guard.aws import iam as iam_api
from ssm_guard.aws import organizations as org_api
from ssm_guard.aws import sts as sts_api
from ssm_guard.aws.errors import error_code
from ssm_guard.decisions import Kind
from ssm_guard.enforce import Guard
from ssm_guard.observability import count, logger
from ssm_guard.settings import Settings, SettingsError

if TYPE_CHECKING:
    from ssm_guard.alerts import Alert

SINGLE, CENTRAL, MEMBER = "single", "central", "member"
DEPLOYMENT_ROLES = (SINGLE, CENTRAL, MEMBER)
DEFAULT_MEMBER_ROLE = "ssm-guard-member"
MEMBER_SERVICES = frozenset({"sagemaker", "iam", "ssm", "logs", "cloudtrail", "sts"})
"""Services a member guard calls in the member account; any other (SNS alerts, the alert bus,
Scheduler, SQS, DynamoDB, Lambda) stays in the central account."""
MEMBERSHIP_TTL_SECONDS = 300
"""How long one read of the organization's accounts serves a warm function."""
CREDENTIALS_MARGIN = timedelta(minutes=16)
"""Credentials expiring sooner are renewed first: a Lambda run lasts at most 15 minutes."""

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_SESSION_NAME_RE = re.compile(r"[^\w+=,.@-]")


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _csv(raw: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def session_name(prefix: str, function_name: str) -> str:
    """`ssm-guard-<function>`: what CloudTrail in the member account shows as the caller."""
    name = _SESSION_NAME_RE.sub("-", f"{prefix}-{function_name}" if function_name else prefix)
    return name[:64]


@dataclass(frozen=True)
class OrgSettings:
    """How this deployment spans accounts, as the template gives it to each function."""

    deployment: str = SINGLE
    own_account: str = ""
    """GUARD_ACCOUNT_ID (the template's AWS::AccountId); asked of STS when empty."""
    own_region: str = ""
    member_role_name: str = DEFAULT_MEMBER_ROLE
    member_accounts: tuple[str, ...] = ()
    """The deployer's list (MEMBER_ACCOUNTS); empty: the organization's ACTIVE accounts."""
    regions: tuple[str, ...] = ()
    """Regions the sweep and `audit --all-accounts` cover (GUARDED_REGIONS); empty: own."""
    session_name: str = "ssm-guard"
    name_prefix: str = "ssm-guard"

    def __post_init__(self) -> None:
        if self.deployment not in DEPLOYMENT_ROLES:
            raise SettingsError(
                f"DEPLOYMENT_ROLE must be one of {', '.join(DEPLOYMENT_ROLES)}, "
                f"got {self.deployment!r}"
            )
        if not _ROLE_NAME_RE.match(self.member_role_name):
            raise SettingsError(f"MEMBER_ROLE_NAME is not a role name: {self.member_role_name!r}")
        accounts = (*self.member_accounts, self.own_account)
        bad = [a for a in accounts if a and not _ACCOUNT_RE.match(a)]
        if bad:
            raise SettingsError(f"account IDs are 12 digits, got {', '.join(bad)}")
        bad = [r for r in self.regions if not _REGION_RE.match(r)]
        if bad:
            raise SettingsError(f"not region names: {', '.join(bad)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrgSettings:
        env = os.environ if environ is None else environ
        prefix = env.get("NAME_PREFIX", "") or "ssm-guard"
        return cls(
            deployment=(env.get("DEPLOYMENT_ROLE", "") or SINGLE).strip().lower(),
            own_account=env.get("GUARD_ACCOUNT_ID", "").strip(),
            own_region=env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", ""),
            member_role_name=env.get("MEMBER_ROLE_NAME", "").strip() or DEFAULT_MEMBER_ROLE,
            member_accounts=_csv(env.get("MEMBER_ACCOUNTS")),
            regions=_csv(env.get("GUARDED_REGIONS")),
            session_name=session_name(prefix, env.get("AWS_LAMBDA_FUNCTION_NAME", "")),
            name_prefix=prefix,
        )

    @property
    def central(self) -> bool:
        return self.deployment == CENTRAL

    def guarded_regions(self) -> tuple[str, ...]:
        return self.regions or ((self.own_region,) if self.own_region else ())

    def member_role_arn(self, account: str, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{account}:role/{self.member_role_name}"


def session_policy_arn(place: Place, name_prefix: str) -> str:
    """The session policy the member stack of that account and region creates (template
    SessionPolicy: `{NamePrefix}-sagemaker-ssm-session-{region}`)."""
    return (
        f"arn:{place.partition}:iam::{place.account}:policy/"
        f"{name_prefix}-sagemaker-ssm-session-{place.region}"
    )


# -- where an event comes from (pure) -------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """An account and a region."""

    account: str
    region: str

    @property
    def partition(self) -> str:
        return partition_of(self.region)


class PlaceError(ValueError):
    """The event's account or region is malformed or disagrees with the resource it names."""


def _sagemaker_arns(event: Mapping[str, Any]) -> list[str]:
    found: list[str] = [r for r in event.get("resources") or [] if isinstance(r, str)]
    detail = event.get("detail")
    if isinstance(detail, Mapping):
        for key in ("EndpointArn", "EndpointConfigArn"):
            if isinstance(detail.get(key), str):
                found.append(detail[key])
        params = detail.get("requestParameters")
        if isinstance(params, Mapping):
            for key in ("resourceArn", "ResourceArn"):
                if isinstance(params.get(key), str):
                    found.append(params[key])
    return [arn for arn in found if arn.startswith("arn:") and arn.split(":")[2:3] == ["sagemaker"]]


def place_of(event: object, own_region: str = "") -> Place | None:
    """The account and region an event is about: the envelope's `account` and `region`
    (EventBridge sets them; a sender cannot choose them), else those of the SageMaker resource it
    names (the guard's re-check events carry only the endpoint ARN). None when the event names
    neither (a schedule, a hand-made invocation): the guard's own account and region.
    """
    if not isinstance(event, Mapping):
        return None
    arns = [arn.split(":", 5) for arn in _sagemaker_arns(event)]
    named_accounts = {parts[4] for parts in arns if len(parts) == 6 and parts[4]}
    named_regions = {parts[3] for parts in arns if len(parts) == 6 and parts[3]}
    account, region = event.get("account"), event.get("region")
    if account is not None and (not isinstance(account, str) or not _ACCOUNT_RE.match(account)):
        raise PlaceError("the event's account is not a 12-digit account ID")
    if region is not None and (not isinstance(region, str) or not _REGION_RE.match(region)):
        raise PlaceError("the event's region is not a region name")
    if len(named_accounts) > 1 or (account and named_accounts - {account}):
        raise PlaceError("the event's account does not own the resource it names")
    if len(named_regions) > 1 or (region and named_regions - {region}):
        raise PlaceError("the event's region is not the region of the resource it names")
    account = account or next(iter(named_accounts), None)
    if account is None:
        return None
    if not _ACCOUNT_RE.match(account):
        raise PlaceError("the resource the event names has no valid account")
    region = region or next(iter(named_regions), None) or own_region
    if not _REGION_RE.match(region):
        raise PlaceError("the event names no valid region")
    return Place(account, region)


# -- membership and member credentials --------------------------------------------------------


@dataclass
class _MemberSession:
    session: boto3.session.Session
    expires: datetime
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)


# Kept by a warm function: its own account, the organization's accounts, member credentials
# and account aliases.
_own_account: dict[str, str] = {}
_membership: dict[str, tuple[float, frozenset[str]]] = {}
_sessions: dict[str, _MemberSession] = {}
_aliases: dict[str, str] = {}


def reset_caches() -> None:
    """Forget accounts, credentials and aliases read before (tests; a warm function keeps them)."""
    for cache in (_own_account, _membership, _sessions, _aliases):
        cache.clear()


def own_account(settings: OrgSettings) -> str:
    if settings.own_account:
        return settings.own_account
    if "id" not in _own_account:
        _own_account["id"] = sts_api.caller_account(clients.client("sts"))
    return _own_account["id"]


def member_accounts(settings: OrgSettings) -> frozenset[str]:
    """The deployer's list, else the organization's ACTIVE accounts (read at most every
    MEMBERSHIP_TTL_SECONDS); the guard's own account always. Raises ClientError when the
    organization cannot be read (the central account is neither its management account nor a
    delegated administrator, and no list was given)."""
    own = own_account(settings)
    if settings.member_accounts:
        return frozenset(settings.member_accounts) | {own}
    cached = _membership.get("organization")
    if cached is not None and time.monotonic() - cached[0] < MEMBERSHIP_TTL_SECONDS:
        return cached[1]
    accounts = org_api.active_account_ids(clients.client("organizations")) | {own}
    _membership["organization"] = (time.monotonic(), accounts)
    return accounts


def _member_session(settings: OrgSettings, place: Place) -> _MemberSession:
    """Credentials of the member role in `place.account`, kept while they last."""
    role_arn = settings.member_role_arn(place.account, place.partition)
    cached = _sessions.get(role_arn)
    if cached is not None and cached.expires - datetime.now(UTC) > CREDENTIALS_MARGIN:
        return cached
    credentials = sts_api.assume_role(clients.client("sts"), role_arn, settings.session_name)
    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )
    expires = credentials.expiration
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    _sessions[role_arn] = _MemberSession(session, expires)
    logger.info(
        "member role assumed",
        extra={"account": place.account, "role_arn": role_arn, "expires": expires.isoformat()},
    )
    return _sessions[role_arn]


def _client(member: _MemberSession, service: str, region: str) -> Any:
    key = (service, region)
    if key not in member.clients:
        member.clients[key] = clients.client_in(member.session, service, region)
    return member.clients[key]


@dataclass
class MemberGuard(Guard):
    """A Guard whose SageMaker, IAM, Parameter Store, Logs and CloudTrail clients act in a
    member account and region through the member role; alerts, retries and records stay in the
    central account."""

    place: Place | None = None
    member: _MemberSession | None = None

    def client(self, service: str) -> Any:
        if (
            service in MEMBER_SERVICES
            and service not in self.overrides
            and self.member is not None
            and self.place is not None
        ):
            self.overrides[service] = _client(self.member, service, self.place.region)
        return super().client(service)


# -- refusals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why the guard will not act in an account; nothing was read or changed there."""

    decision: Kind
    reason: str
    account: str = ""
    region: str = ""
    resource_arn: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decision"] = str(self.decision)
        return data


class AccountRefusedError(Exception):
    """The guard may not act in the account an event or a sweep names."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def _explain_assume(exc: ClientError, role_arn: str) -> str:
    code = error_code(exc) or "error"
    return (
        f"the member role {role_arn} cannot be assumed (AWS said {code}): deploy the member "
        "stack in that account, or check that its role trusts the central functions' roles"
    )


def check_place(place: Place, settings: OrgSettings) -> Refusal | None:
    """None when the guard may act in `place` (its own, or a member whose role it can
    assume); otherwise why not. The credentials stay cached for the guard that follows."""
    own = own_account(settings)
    if place.account == own and place.region == settings.own_region:
        return None
    try:
        members = member_accounts(settings)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return Refusal(
            Kind.FOREIGN_ACCOUNT,
            f"the organization's accounts cannot be read (AWS said {code}), so account "
            f"{place.account} is not known to be a member: give MemberAccounts, or deploy the "
            "central stack in the management or a delegated administrator account",
            place.account,
            place.region,
        )
    if place.account not in members:
        return Refusal(
            Kind.FOREIGN_ACCOUNT,
            f"account {place.account} is not a member of the organization the guard serves",
            place.account,
            place.region,
        )
    try:
        _member_session(settings, place)
    except ClientError as exc:
        role_arn = settings.member_role_arn(place.account, place.partition)
        return Refusal(
            Kind.MEMBER_UNREACHABLE, _explain_assume(exc, role_arn), place.account, place.region
        )
    return None


def _first_arn(event: object) -> str:
    arns = _sagemaker_arns(event) if isinstance(event, Mapping) else []
    return arns[0] if arns else ""


def refused(event: object) -> Refusal | None:
    """Screen an event before the guard acts on it: None in a single-account deployment, for the
    guard's own account and region, and for a member it can reach. Logged when refused."""
    settings = OrgSettings.from_env()
    if not settings.central:
        return None
    arn = _first_arn(event)
    try:
        place = place_of(event, settings.own_region)
    except PlaceError as exc:
        account = event.get("account") if isinstance(event, Mapping) else None
        refusal: Refusal | None = Refusal(
            Kind.FOREIGN_ACCOUNT, str(exc), str(account or ""), "", arn
        )
    else:
        refusal = None if place is None else check_place(place, settings)
        if refusal is not None:
            refusal = replace(refusal, resource_arn=arn)
    if refusal is not None:
        logger.warning(
            "event refused: the guard does not act in that account",
            extra={
                "decision": str(refusal.decision),
                "account": refusal.account,
                "region": refusal.region,
                "reason": refusal.reason,
            },
        )
        count("Decision_" + str(refusal.decision).replace("-", "_"))
    return refusal


def refusal_alert(refusal: Refusal, *, mode: str, now: datetime) -> Alert:
    """The alert for a refused event or an unreachable member (pure)."""
    from ssm_guard.alerts import Alert, arn_parts, one_line
    from ssm_guard.exceptions import iso

    if refusal.decision is Kind.MEMBER_UNREACHABLE:
        headline = f"[ssm-guard] Cannot act in account {refusal.account}: member role unreachable"
    else:
        headline = f"[ssm-guard] Event from account {refusal.account or '?'} refused"
    resource = arn_parts(refusal.resource_arn).resource if refusal.resource_arn else ""
    name = resource.split("/", 1)[-1] if "/" in resource else ""
    return Alert(
        decision=str(refusal.decision),
        subject=one_line(headline),
        endpoint_name=name or "-",
        endpoint_arn=refusal.resource_arn,
        account=refusal.account or "?",
        region=refusal.region or "?",
        action="none: nothing was read or changed in that account",
        reason=refusal.reason,
        production=False,
        mode=mode,
        time=iso(now),
    )


def alert_refusal(refusal: Refusal, guard: Guard | None = None) -> dict[str, Any]:
    """Alert the centre about a refusal; the handler's answer."""
    from ssm_guard import alerts

    central = guard or Guard.from_env()
    alert = refusal_alert(refusal, mode=central.settings.guardrail_mode, now=datetime.now(UTC))
    return {**refusal.as_dict(), "alert": alerts.send(central, alert)}


# -- guards ---------------------------------------------------------------------------------


def guard_for(place: Place, *, settings: OrgSettings | None = None, dry_run: bool = False) -> Guard:
    """A Guard acting in `place`: the usual one for the guard's own account and region, a
    MemberGuard for a member. Raises AccountRefusedError otherwise (nothing is touched)."""
    settings = settings or OrgSettings.from_env()
    refusal = check_place(place, settings)
    if refusal is not None:
        raise AccountRefusedError(refusal)
    if place.account == own_account(settings) and place.region == settings.own_region:
        return Guard.from_env(dry_run=dry_run)
    member = _member_session(settings, place)
    base = Settings.from_env()
    return MemberGuard(
        settings=replace(base, policy_arn=session_policy_arn(place, settings.name_prefix)),
        sagemaker=_client(member, "sagemaker", place.region),
        iam=_client(member, "iam", place.region),
        dry_run=dry_run,
        place=place,
        member=member,
    )


def guard_for_event(event: object, *, dry_run: bool = False) -> Guard:
    """The Guard for the account and region an event came from (`Guard.from_env()` in a
    single-account deployment). Screen the event with `refused` first: an event this cannot
    serve raises AccountRefusedError."""
    settings = OrgSettings.from_env()
    if not settings.central:
        return Guard.from_env(dry_run=dry_run)
    try:
        place = place_of(event, settings.own_region)
    except PlaceError as exc:
        raise AccountRefusedError(Refusal(Kind.FOREIGN_ACCOUNT, str(exc))) from exc
    if place is None:
        return Guard.from_env(dry_run=dry_run)
    return guard_for(place, settings=settings, dry_run=dry_run)


def account_of(guard: Guard) -> str:
    """The account a guard acts in."""
    if isinstance(guard, MemberGuard) and guard.place is not None:
        return guard.place.account
    return own_account(OrgSettings.from_env())


def account_alias(guard: Guard, account: str) -> str:
    """The alias of `account`, read through the guard acting in it, for alerts of a central
    deployment; "" when it has none, cannot be read, is another account than the guard's, or
    the deployment is single (best effort, never raises)."""
    if not OrgSettings.from_env().central or not account or account != account_of(guard):
        return ""
    if account in _aliases:
        return _aliases[account]
    try:
        alias = iam_api.account_alias(guard.iam)
    except (ClientError, BotoCoreError) as exc:
        logger.info("account alias unknown", extra={"account": account, "error": str(exc)})
        alias = ""
    _aliases[account] = alias
    return alias


# -- every member account and region ---------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One account and region of an organization-wide run (the sweep, `audit --all-accounts`):
    its guard, or why there is none."""

    place: Place
    guard: Guard | None = None
    refusal: Refusal | None = None


def places(settings: OrgSettings) -> list[Place]:
    """Every member account (and the guard's own) in every guarded region, sorted."""
    regions = settings.guarded_regions()
    if not regions:
        raise SettingsError("no region to cover: set GUARDED_REGIONS or AWS_REGION")
    return [Place(a, r) for a in sorted(member_accounts(settings)) for r in regions]


def each_member(settings: OrgSettings, *, dry_run: bool = False) -> Iterator[Unit]:
    """A guard for every member account and region; one that cannot be reached is a Unit with
    its refusal, and the others carry on."""
    for place in places(settings):
        try:
            yield Unit(place, guard=guard_for(place, settings=settings, dry_run=dry_run))
        except AccountRefusedError as exc:
            yield Unit(place, refusal=exc.refusal)
