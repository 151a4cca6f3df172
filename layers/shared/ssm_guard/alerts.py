"""Telling people what the guardrail did: an SNS message, a custom EventBridge event, a metric.

An alert carries what an on-call needs without opening anything: account, region, endpoint,
variants, old and new config, the action taken or why none, who turned SSM access on when
CloudTrail can tell, and a console link. The subject says it in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ssm_guard.aws import cloudtrail as cloudtrail_api
from ssm_guard.aws import eventbridge as events_api
from ssm_guard.aws import sns as sns_api
from ssm_guard.decisions import Kind
from ssm_guard.endpoint import EndpointSnapshot
from ssm_guard.exceptions import iso
from ssm_guard.observability import count, logger

if TYPE_CHECKING:
    from ssm_guard.enforce import Guard, Outcome

ALERT_SOURCE = "sagemaker-ssm-guard"
ALERT_DETAIL_TYPE = "SageMaker SSM Guard Alert"
# SNS: a subject is ASCII, one line, fewer than 100 characters.
MAX_SUBJECT = 99
TAG = "[ssm-guard]"
# How far before the endpoint's last change CloudTrail is searched for who changed it.
WHO_WINDOW = timedelta(hours=6)

_CONSOLE_HOSTS = {
    "aws": "https://{region}.console.aws.amazon.com",
    "aws-cn": "https://console.amazonaws.cn",
    "aws-us-gov": "https://console.amazonaws-us-gov.com",
}


@dataclass(frozen=True)
class ArnParts:
    partition: str
    region: str
    account: str
    resource: str


def arn_parts(arn: str) -> ArnParts:
    """`arn:aws:sagemaker:us-east-1:123:endpoint/name` -> its parts (blank when not an ARN)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return ArnParts("aws", "", "", "")
    return ArnParts(parts[1], parts[3], parts[4], parts[5])


def console_url(arn: str, name: str, *, kind: str = "endpoints") -> str:
    """The SageMaker console page of an endpoint (`endpoints`) or config (`endpointConfig`)."""
    parts = arn_parts(arn)
    host = _CONSOLE_HOSTS.get(parts.partition, _CONSOLE_HOSTS["aws"]).format(region=parts.region)
    return f"{host}/sagemaker/home?region={parts.region}#/{kind}/{name}"


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """An SNS subject: printable ASCII, no line breaks, shortened with `...` when too long."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in " ".join(text.split()))
    return clean if len(clean) <= limit else clean[: limit - 3].rstrip() + "..."


_HEADLINES = {
    Kind.REVERTED: "SSM access reverted on production endpoint {name}",
    Kind.ALERTED: "SSM access is on for production endpoint {name} (monitor mode)",
    Kind.EXCEPTION_GRANTED: "SSM exception granted on {name} until {until}",
    Kind.EXCEPTION_EXPIRED: "SSM exception expired on {name}; {done}",
    Kind.EXCEPTION_REFUSED: "SSM exception refused on {name}; {done}",
    Kind.REVERT_FAILED: "Could not revert SSM access on {name}: action needed",
    Kind.CONFIG_EARLY_WARNING: "Config {name} has SSM access on and is tagged production",
    Kind.ENDPOINT_UNREADABLE: "Cannot read SSM access of {name}: its config or model was deleted",
}


def subject_for(kind: Kind, name: str, *, action: str, until: str | None = None) -> str:
    done = "access reverted" if action == "reverted" else "alert only"
    template = _HEADLINES.get(kind, "SSM guard decision " + str(kind) + " on {name}")
    return one_line(f"{TAG} " + template.format(name=name, until=until or "?", done=done))


@dataclass(frozen=True)
class Alert:
    decision: str
    subject: str
    endpoint_name: str
    endpoint_arn: str
    account: str
    region: str
    action: str
    reason: str
    production: bool = True
    mode: str = "enforce"
    variants: tuple[str, ...] = ()
    old_config: str | None = None
    new_config: str | None = None
    exception_until: str | None = None
    enabled_by: str | None = None
    console_url: str = ""
    time: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    account_alias: str = ""
    """Filled by `send` in an organization-wide deployment (accounts.account_alias)."""

    def detail(self) -> dict[str, Any]:
        """The custom event's detail: every field, JSON-ready."""
        data = asdict(self)
        data["variants"] = list(self.variants)
        data["extra"] = dict(self.extra)
        return data

    def message(self) -> str:
        """The SNS message: one fact a line, readable in an e-mail."""
        lines = [
            self.subject,
            "",
            f"What happened: {self.reason}",
            f"Action taken:  {self.action}",
            f"Endpoint:      {self.endpoint_name} ({self.endpoint_arn})",
            f"Account:       {self.account}"
            + (f" ({self.account_alias})" if self.account_alias else "")
            + f"   Region: {self.region}",
            f"SSM variants:  {', '.join(self.variants) or '-'}",
            f"Old config:    {self.old_config or '-'}",
            f"New config:    {self.new_config or '-'}",
        ]
        if self.exception_until:
            lines.append(f"Exception until: {self.exception_until}")
        lines.append(f"SSM enabled by: {self.enabled_by or 'unknown (CloudTrail could not tell)'}")
        lines.append(f"Guard mode:    {self.mode}")
        lines.append(f"Time:          {self.time}")
        lines.append(f"Console:       {self.console_url}")
        for key, value in sorted(self.extra.items()):
            lines.append(f"{key}: {value}")
        lines += [
            "",
            "SSM access delays security patching and the replacement of faulty instances by a "
            "day; AWS advises it on dev and test endpoints only.",
        ]
        return "\n".join(lines)


def alert_for(
    outcome: Outcome,
    snapshot: EndpointSnapshot,
    *,
    mode: str,
    now: datetime,
    enabled_by: str | None = None,
) -> Alert:
    """The alert for an outcome of the guardrail (pure)."""
    details = outcome.details
    action = str(details.get("action", "none"))
    until = (details.get("exception") or {}).get("until")
    parts = arn_parts(snapshot.arn)
    return Alert(
        decision=str(outcome.decision),
        subject=subject_for(outcome.decision, snapshot.name, action=action, until=until),
        endpoint_name=snapshot.name,
        endpoint_arn=snapshot.arn,
        account=parts.account,
        region=parts.region,
        action=action,
        reason=outcome.reason,
        production=outcome.production,
        mode=mode,
        variants=tuple(outcome.ssm_variants),
        old_config=details.get("old_config") or snapshot.config_name,
        new_config=details.get("new_config"),
        exception_until=until,
        enabled_by=enabled_by,
        console_url=console_url(snapshot.arn, snapshot.name),
        time=iso(now),
        extra={k: details[k] for k in ("roles_detached", "error") if details.get(k)},
    )


def _parameter(params: Mapping[str, Any], name: str) -> Any:
    """CloudTrail writes request parameters in lowerCamelCase; accept the API's casing too."""
    lower = name[:1].lower() + name[1:]
    return params.get(lower, params.get(name))


def who_enabled(guard: Guard, snapshot: EndpointSnapshot, now: datetime) -> str | None:
    """Who pointed the endpoint at its SSM-enabled config, when CloudTrail can tell.

    Best effort: CloudTrail delivers events minutes late and may hold none; any error is logged
    and answered with None, never raised, so an alert is never held up by it.
    """
    changed = snapshot.last_modified_ms
    end = now
    start = (
        datetime.fromtimestamp(changed / 1000, tz=now.tzinfo) if changed is not None else now
    ) - WHO_WINDOW
    try:
        if "cloudtrail" not in guard.overrides:
            guard.overrides["cloudtrail"] = cloudtrail_api.best_effort_client()
        client = guard.client("cloudtrail")
        for event_name in ("UpdateEndpoint", "CreateEndpoint"):
            for record in cloudtrail_api.recent_calls(client, event_name, start, end):
                params = record.get("requestParameters") or {}
                endpoint = _parameter(params, "EndpointName")
                config = _parameter(params, "EndpointConfigName")
                if not isinstance(endpoint, str) or endpoint.lower() != snapshot.name.lower():
                    continue
                if config != snapshot.config_name:
                    continue
                identity = record.get("userIdentity") or {}
                who = identity.get("arn") or identity.get("principalId") or "unknown principal"
                return f"{who} ({event_name} at {record.get('eventTime', '?')})"
    except Exception as exc:  # best effort by design (see the docstring)
        logger.info("cloudtrail lookup failed", extra={"error": type(exc).__name__})
    return None


def send(guard: Guard, alert: Alert) -> str:
    """Publish to the SNS topic and put the custom event. Returns `sent`, `failed` or `skipped`.

    A failed alert is logged and counted (`AlertFailed`, alarm on it), never raised: the action
    it reports has already happened, and a Lambda retry would find nothing left to do.
    """
    settings = guard.settings
    if guard.dry_run:
        return "skipped"
    if not alert.account_alias:
        from ssm_guard.accounts import account_alias

        alert = replace(alert, account_alias=account_alias(guard, alert.account))
    failures = 0
    if settings.alert_topic_arn:
        try:
            sns_api.publish(
                guard.client("sns"),
                settings.alert_topic_arn,
                subject=alert.subject,
                message=alert.message(),
                attributes={"decision": alert.decision, "endpoint": alert.endpoint_name},
            )
        except (ClientError, BotoCoreError) as exc:
            failures += 1
            logger.error(
                "alert not published",
                extra={"channel": "sns", "decision": alert.decision, "error": str(exc)},
            )
    try:
        events_api.put_event(
            guard.client("events"),
            bus_name=settings.alert_bus_name,
            source=ALERT_SOURCE,
            detail_type=ALERT_DETAIL_TYPE,
            detail=alert.detail(),
            resources=[alert.endpoint_arn] if alert.endpoint_arn.startswith("arn:") else [],
        )
    except (ClientError, BotoCoreError, events_api.PutEventsError) as exc:
        failures += 1
        logger.error(
            "alert not published",
            extra={"channel": "eventbridge", "decision": alert.decision, "error": str(exc)},
        )
    if failures:
        count("AlertFailed")
        return "failed"
    count("AlertSent")
    logger.info(
        "alert sent",
        extra={"decision": alert.decision, "endpoint_name": alert.endpoint_name},
    )
    return "sent"


def send_unreadable(guard: Guard, outcome: Outcome, now: datetime) -> None:
    """Alert on an endpoint whose config or model was deleted under it (`enforce.unreadable`):
    the guard cannot see its SSM access, so people must look."""
    details = outcome.details
    snapshot = EndpointSnapshot(
        name=outcome.endpoint_name,
        arn=str(details.get("endpoint_arn", "")),
        status=outcome.status,
        config_name=str(details.get("config_name", "")),
        config={},
        variants=(),
        tags=dict(details.get("tags") or {}),
    )
    alert = alert_for(outcome, snapshot, mode=guard.settings.guardrail_mode, now=now)
    details["alert"] = send(guard, alert)
    details["alert_subject"] = alert.subject
