"""Discovery: the SSM target of every live container of an endpoint, published to Parameter Store.

Triggered when an endpoint comes into service (every update replaces the instances), when it is
deleted, and on a schedule (scaling adds and removes instances without an event). Decisions are
made on live state: the endpoint, its config and models, and its log streams.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from ssm_guard.accounts import guard_for_event, refused
from ssm_guard.aws import logs as logs_api
from ssm_guard.aws import parameters as ps
from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.aws.errors import error_code, is_not_found, is_throttling
from ssm_guard.decisions import unreachable_reason
from ssm_guard.endpoint import EndpointSnapshot, ModelInfo, Variant
from ssm_guard.enforce import Guard
from ssm_guard.events import SCHEDULED_EVENT, MalformedEventError, parse_endpoint_event
from ssm_guard.names import InvalidNameError, validate_name
from ssm_guard.observability import count, logger
from ssm_guard.targets import (
    PART_PREFIX,
    SOURCE_LOG,
    Target,
    TargetError,
    TargetsDocument,
    decode,
    endpoint_of,
    find_target_ids,
    instance_targets,
    instances_from_streams,
    layout,
    parameter_name,
    part_count,
    select_live_instances,
    sort_key,
    ssm_log_container,
    stale_names,
)

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_ssm import SSMClient

LIST_PAGE_SIZE = 100
"""ListEndpoints returns at most 100 endpoints a page."""


class TargetsAction(StrEnum):
    """What a refresh did; the value is what logs, metrics and the handler say."""

    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    NONE = "none"
    SKIPPED = "skipped"
    FAILED = "failed"
    MALFORMED_EVENT = "malformed-event"


@dataclass
class TargetsOutcome:
    endpoint_name: str
    action: TargetsAction
    reason: str = ""
    targets: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    """Parameters written (published) or deleted (deleted)."""
    unreachable: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = str(self.action)
        return data


@dataclass(frozen=True)
class Published:
    """What Parameter Store holds for one endpoint."""

    names: frozenset[str] = frozenset()
    document: TargetsDocument | None = None
    """None when nothing is published or the value cannot be read (it is then rewritten)."""
    problem: str = ""
    """Why a value that exists cannot be read (a write in progress, a value edited by hand)."""

    @property
    def exists(self) -> bool:
        return bool(self.names)


NOTHING_PUBLISHED = Published()


def _ssm(guard: Guard) -> SSMClient:
    return cast("SSMClient", guard.client("ssm"))


def _logs(guard: Guard) -> CloudWatchLogsClient:
    return cast("CloudWatchLogsClient", guard.client("logs"))


def _published_from(
    main_name: str, main_value: str | None, children: Mapping[str, str]
) -> Published:
    names = frozenset(children) | ({main_name} if main_value is not None else frozenset())
    if main_value is None:
        problem = "parts exist without their main parameter" if names else ""
        return Published(names=names, problem=problem)
    parts: dict[int, str] = {}
    for name, value in children.items():
        suffix = name[len(main_name) + 1 :]
        number = suffix.removeprefix(PART_PREFIX)
        if suffix.startswith(PART_PREFIX) and number.isdigit():
            parts[int(number)] = value
    try:
        return Published(names=names, document=decode(main_value, parts))
    except TargetError as exc:
        return Published(names=names, problem=str(exc))


def _readable(value: str) -> bool:
    try:
        decode(value, None)
    except TargetError:
        return False
    return True


def published_for(ssm: SSMClient, prefix: str, endpoint: str) -> Published:
    """GetParameter on the endpoint's parameter, and its parts when it says it has some."""
    main = parameter_name(prefix, endpoint)
    value = ps.get_value(ssm, main)
    children: dict[str, str] = {}
    if value is not None and (part_count(value) > 0 or not _readable(value)):
        children = ps.get_tree(ssm, main)
    return _published_from(main, value, children)


def all_published(ssm: SSMClient, prefix: str) -> dict[str, Published]:
    """Everything under the prefix, by endpoint name (GetParametersByPath, all pages)."""
    grouped: dict[str, dict[str, str]] = {}
    for name, value in ps.get_tree(ssm, prefix).items():
        owner = endpoint_of(prefix, name)
        if owner is not None:
            grouped.setdefault(owner[0], {})[name] = value
    published: dict[str, Published] = {}
    for endpoint, entries in grouped.items():
        main = parameter_name(prefix, endpoint)
        children = {n: v for n, v in entries.items() if n != main}
        published[endpoint] = _published_from(main, entries.get(main), children)
    return published


def read_published(guard: Guard, endpoint: str) -> Published:
    return published_for(_ssm(guard), guard.settings.parameter_prefix, endpoint)


def read_all_published(guard: Guard) -> dict[str, Published]:
    return all_published(_ssm(guard), guard.settings.parameter_prefix)


def instance_counts(described: Mapping[str, Any]) -> dict[str, int | None]:
    """Each variant's CurrentInstanceCount from DescribeEndpoint (production and shadow)."""
    counts: dict[str, int | None] = {}
    for key in ("ProductionVariants", "ShadowProductionVariants"):
        for live in described.get(key) or ():
            current = live.get("CurrentInstanceCount", live.get("DesiredInstanceCount"))
            counts[str(live.get("VariantName"))] = current if isinstance(current, int) else None
    return counts


@dataclass
class Discovery:
    targets: list[Target] | None
    """None when no variant can take an SSM session: nothing may stay published."""
    unreachable: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    reason: str = ""


def reachable_variants(
    snapshot: EndpointSnapshot,
) -> tuple[list[tuple[Variant, ModelInfo | None]], dict[str, str]]:
    """SSM-enabled variants SSM can open a session into, and why the others cannot."""
    reachable: list[tuple[Variant, ModelInfo | None]] = []
    unreachable: dict[str, str] = {}
    for variant in snapshot.ssm_variants:
        model = snapshot.models.get(variant.model_name) if variant.model_name else None
        reason = unreachable_reason(variant, model)
        if reason:
            unreachable[variant.name] = reason
        else:
            reachable.append((variant, model))
    return reachable, unreachable


def discover(
    guard: Guard,
    snapshot: EndpointSnapshot,
    counts: Mapping[str, int | None],
    published: TargetsDocument | None = None,
) -> Discovery:
    """Find the targets of the endpoint's live containers in its log streams.

    Targets already published from the log for an instance that is still live are kept without
    reading its stream again.
    """
    reachable, unreachable = reachable_variants(snapshot)
    if not reachable:
        reason = (
            "SSM cannot reach the containers of the SSM-enabled variants"
            if unreachable
            else "no variant has SSM access on"
        )
        return Discovery(targets=None, unreachable=unreachable, reason=reason)
    logs = _logs(guard)
    try:
        group, streams = logs_api.endpoint_streams(
            logs, snapshot.name, [f"{variant.name}/" for variant, _ in reachable]
        )
    except logs_api.LogGroupMissingError:
        return Discovery(
            targets=[],
            unreachable=unreachable,
            reason="the endpoint has no log group yet; targets appear once its instances log",
        )
    known: dict[tuple[str, str], list[Target]] = {}
    for target in published.targets if published else ():
        if target.source == SOURCE_LOG:
            known.setdefault((target.variant, target.instance), []).append(target)
    found: dict[str, Target] = {}
    mismatches: list[str] = []
    for variant, model in reachable:
        instances = instances_from_streams(streams.get(f"{variant.name}/", []))
        live = select_live_instances(
            instances.values(),
            modified_ms=snapshot.last_modified_ms,
            instance_count=counts.get(variant.name),
        )
        containers = [c.name for c in model.containers] if model and model.multi_container else None
        for instance in live:
            reuse = known.get((variant.name, instance.instance))
            if reuse:
                found.update((t.target, t) for t in reuse)
                continue
            logged_ids: list[str] = []
            logged_containers: set[str] = set()
            if instance.ssm_stream:
                for event in logs_api.head_events(logs, group, instance.ssm_stream):
                    container, _ = ssm_log_container(event.message)
                    if container:
                        logged_containers.add(container)
                    logged_ids.extend(
                        find_target_ids(
                            event.message,
                            endpoint=snapshot.name,
                            variant=variant.name,
                            instance=instance.instance,
                        )
                    )
            result = instance_targets(
                endpoint=snapshot.name,
                variant=variant.name,
                instance=instance.instance,
                containers=containers,
                logged_ids=logged_ids,
                logged_containers=logged_containers,
            )
            if result.mismatch:
                mismatches.append(f"{variant.name}/{instance.instance}: {result.mismatch}")
            found.update((t.target, t) for t in result.targets)
    targets = sorted(found.values(), key=sort_key)
    reason = "" if targets else "no live instance found in the endpoint's log streams yet"
    return Discovery(targets, unreachable, mismatches, reason)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(endpoint: str) -> dict[str, str]:
    return {"managed-by": ps.MANAGED_BY, "sagemaker-endpoint": endpoint}


def publish(
    guard: Guard, endpoint: str, targets: list[Target], published: Published
) -> TargetsOutcome:
    """Write the targets when they differ from what is published; drop parts no longer used."""
    outcome = TargetsOutcome(
        endpoint_name=endpoint,
        action=TargetsAction.UNCHANGED,
        targets=[t.target for t in targets],
        dry_run=guard.dry_run,
    )
    doc = TargetsDocument(endpoint=endpoint, targets=tuple(targets), updated=_now())
    plan = layout(guard.settings.parameter_prefix, doc)
    stale = stale_names(published.names, plan)
    if published.document is not None and published.document.same_targets(targets) and not stale:
        outcome.reason = "the published targets are current"
        return outcome
    outcome.action = TargetsAction.PUBLISHED
    outcome.parameters = list(plan.names) + stale
    if guard.dry_run:
        outcome.reason = "dry run: would publish the targets"
        return outcome
    ssm = _ssm(guard)
    description = f"SSM targets of SageMaker endpoint {endpoint} (sagemaker-ssm-guard)"
    for write in plan.writes:
        ps.put_value(
            ssm,
            write,
            exists=write.name in published.names,
            tags=_tags(endpoint),
            description=description,
        )
    if stale:
        ps.delete_names(ssm, stale)
    outcome.reason = f"{len(targets)} targets published in {len(plan.writes)} parameters"
    return outcome


def _delete(guard: Guard, endpoint: str, published: Published, reason: str) -> TargetsOutcome:
    if not published.exists:
        return TargetsOutcome(endpoint, TargetsAction.NONE, reason, dry_run=guard.dry_run)
    names = sorted(published.names)
    outcome = TargetsOutcome(
        endpoint, TargetsAction.DELETED, reason, parameters=names, dry_run=guard.dry_run
    )
    if guard.dry_run:
        outcome.reason = f"dry run: would delete ({reason})"
        return outcome
    ps.delete_names(_ssm(guard), names)
    return outcome


def remove_targets(
    guard: Guard, endpoint_name: str, *, published: Published | None = None
) -> TargetsOutcome:
    """The endpoint is gone: delete its parameters (the main one and any parts)."""
    name = validate_name(endpoint_name)
    known = published if published is not None else read_published(guard, name)
    return _delete(guard, name, known, "the endpoint was deleted")


def _is_transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return is_throttling(exc) or int(status or 0) >= 500


def refresh_targets(
    guard: Guard,
    snapshot_or_name: EndpointSnapshot | str,
    *,
    published: Published | None = None,
    described: Mapping[str, Any] | None = None,
) -> TargetsOutcome:
    """Discover the endpoint's targets and publish them when they changed.

    Give a snapshot already read (the enforcer, the sweep) or a name to read it live. An error a
    retry cannot fix (access denied, a bad value) is an outcome; throttling and faults that
    outlast botocore's retries are raised, so Lambda retries the event.
    """
    name = (
        snapshot_or_name.name
        if isinstance(snapshot_or_name, EndpointSnapshot)
        else validate_name(snapshot_or_name)
    )
    try:
        return _refresh(guard, snapshot_or_name, published, described)
    except ClientError as exc:
        if _is_transient(exc):
            raise
        return TargetsOutcome(
            name,
            TargetsAction.FAILED,
            f"AWS refused {error_code(exc) or 'a call'}; nothing was changed after it",
            dry_run=guard.dry_run,
        )


def _refresh(
    guard: Guard,
    snapshot_or_name: EndpointSnapshot | str,
    published: Published | None,
    described: Mapping[str, Any] | None,
) -> TargetsOutcome:
    if isinstance(snapshot_or_name, EndpointSnapshot):
        snapshot = snapshot_or_name
        counts = instance_counts(
            described if described is not None else {"ProductionVariants": snapshot.live_variants}
        )
    else:
        name = snapshot_or_name
        try:
            raw = (
                dict(described)
                if described is not None
                else sm_api.describe_endpoint(guard.sagemaker, name)
            )
            snapshot = sm_api.read_endpoint(guard.sagemaker, name, described=raw, tags={})
        except sm_api.EndpointNotFoundError:
            return remove_targets(guard, name, published=published)
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            return _unreadable(guard, name)
        counts = instance_counts(raw)
    known = published if published is not None else read_published(guard, snapshot.name)
    if snapshot.status == "Deleting":
        return _delete(guard, snapshot.name, known, "the endpoint is being deleted")
    if snapshot.status != "InService":
        return TargetsOutcome(
            snapshot.name,
            TargetsAction.SKIPPED,
            f"the endpoint is {snapshot.status}; targets are refreshed when it is in service",
            dry_run=guard.dry_run,
        )
    found = discover(guard, snapshot, counts, known.document)
    if found.targets is None:
        outcome = _delete(guard, snapshot.name, known, found.reason)
    else:
        outcome = publish(guard, snapshot.name, found.targets, known)
        if found.reason:
            outcome.reason = f"{outcome.reason}; {found.reason}"
    outcome.unreachable = found.unreachable
    outcome.mismatches = found.mismatches
    return outcome


def _list_endpoints(guard: Guard) -> Iterator[Mapping[str, Any]]:
    paginator = guard.sagemaker.get_paginator("list_endpoints")
    for page in paginator.paginate(PaginationConfig={"PageSize": LIST_PAGE_SIZE}):
        yield from page.get("Endpoints", [])


def refresh_all_targets(guard: Guard) -> list[TargetsOutcome]:
    """The scheduled refresh: every endpoint of the account and region, and the parameters of
    endpoints that no longer exist (a DELETED event may have been missed).

    Published parameters are read once for all endpoints, and each endpoint config is read once.
    """
    published = read_all_published(guard)
    configs: dict[str, dict[str, Any]] = {}
    outcomes: list[TargetsOutcome] = []
    seen: set[str] = set()
    for summary in _list_endpoints(guard):
        name = str(summary["EndpointName"])
        seen.add(name)
        status = str(summary.get("EndpointStatus", ""))
        known = published.get(name, NOTHING_PUBLISHED)
        if status not in ("InService", "Deleting"):
            continue
        outcomes.append(_sweep_one(guard, name, known, configs))
    for name in sorted(set(published) - seen):
        try:
            validate_name(name)
        except InvalidNameError:
            logger.warning("parameter outside the naming scheme", extra={"endpoint_name": name})
            continue
        outcomes.append(_delete(guard, name, published[name], "the endpoint no longer exists"))
    return outcomes


def _unreadable(guard: Guard, name: str) -> TargetsOutcome:
    """The endpoint exists but its config or a model was deleted under it: it still serves,
    so what was published stays (the enforcer alerts; `enforce.unreadable`)."""
    return TargetsOutcome(
        name,
        TargetsAction.SKIPPED,
        "the endpoint's config or model no longer exists; published targets are kept",
        dry_run=guard.dry_run,
    )


def _sweep_one(
    guard: Guard, name: str, known: Published, configs: dict[str, dict[str, Any]]
) -> TargetsOutcome:
    try:
        described = sm_api.describe_endpoint(guard.sagemaker, name)
        config_name = str(described["EndpointConfigName"])
        if config_name not in configs:
            configs[config_name] = sm_api.describe_endpoint_config(guard.sagemaker, config_name)
        snapshot = sm_api.read_endpoint(
            guard.sagemaker, name, described=described, config=configs[config_name], tags={}
        )
    except sm_api.EndpointNotFoundError:
        return _delete(guard, name, known, "the endpoint no longer exists")
    except ClientError as exc:
        if is_not_found(exc):
            return _unreadable(guard, name)
        return _failed(guard, name, exc)
    try:
        return refresh_targets(guard, snapshot, published=known, described=described)
    except ClientError as exc:
        # One endpoint's throttling must not stop the sweep; the next run retries it.
        return _failed(guard, name, exc)


def _failed(guard: Guard, name: str, exc: ClientError) -> TargetsOutcome:
    return TargetsOutcome(
        name,
        TargetsAction.FAILED,
        f"AWS said {error_code(exc) or 'error'}; the next refresh retries",
        dry_run=guard.dry_run,
    )


def record_targets(outcome: TargetsOutcome) -> None:
    """One structured log line and one metric per endpoint refreshed."""
    log = logger.warning if outcome.action is TargetsAction.FAILED else logger.info
    log(
        "targets refreshed",
        extra={
            "endpoint_name": outcome.endpoint_name,
            "action": str(outcome.action),
            "targets": len(outcome.targets),
            "parameters": outcome.parameters,
            "unreachable": outcome.unreachable,
            "reason": outcome.reason,
            "dry_run": outcome.dry_run,
        },
    )
    if outcome.mismatches:
        logger.warning(
            "targets in the log disagree with the model",
            extra={"endpoint_name": outcome.endpoint_name, "mismatches": outcome.mismatches},
        )
        count("TargetsMismatch", len(outcome.mismatches))
    count("Targets_" + str(outcome.action).replace("-", "_"))


def _is_scheduled(event: object) -> bool:
    return (
        isinstance(event, Mapping)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == SCHEDULED_EVENT
    )


def on_targets_trigger(event: Any, guard: Guard | None = None) -> dict[str, Any]:
    """The work behind the targets function: an endpoint state change (IN_SERVICE refreshes,
    DELETED removes) or the schedule (refresh every endpoint)."""
    if _is_scheduled(event):
        guard = guard or guard_for_event(event)
        outcomes = refresh_all_targets(guard)
        for outcome in outcomes:
            record_targets(outcome)
        summary: dict[str, int] = {}
        for outcome in outcomes:
            summary[str(outcome.action)] = summary.get(str(outcome.action), 0) + 1
        return {"trigger": "schedule", "endpoints": len(outcomes), "actions": summary}
    try:
        parsed = parse_endpoint_event(event)
    except MalformedEventError as exc:
        logger.warning("event rejected", extra={"reason": str(exc)})
        count("MalformedEvent")
        return {"action": str(TargetsAction.MALFORMED_EVENT), "reason": str(exc)}
    logger.append_keys(endpoint_name=parsed.endpoint_name)
    logger.info(
        "event received",
        extra={"event_status": parsed.status, "event_id": parsed.event_id},
    )
    # An account the guard may not act in: the enforcer alerts the same event.
    refusal = refused(event)
    if refusal is not None:
        return refusal.as_dict()
    guard = guard or guard_for_event(event)
    # The event is only a trigger: a DELETED endpoint is not found and its targets go; a late
    # DELETED for a name that was created again refreshes the new endpoint instead.
    outcome = refresh_targets(guard, parsed.endpoint_name)
    record_targets(outcome)
    return outcome.as_dict()
