"""The sweep: every endpoint of the account, evaluated as an event would be, on a schedule.

CloudTrail and EventBridge delivery is best effort and a trail may be missing, so events alone
can miss an endpoint. The sweep is the safety net: hourly by default (`SweepSchedule`), it reads
every endpoint, decides with the same functions as the events (`enforce_snapshot`, hence the
guardrail), publishes targets, and cleans up what events left behind.

Reading thousands of endpoints cheaply (about one AWS call per endpoint in steady state):

- `Search(Resource="Endpoint")`, 100 a page, gives each endpoint's DescribeEndpoint fields and its
  tags: no DescribeEndpoint and no ListTags per endpoint.
- each distinct endpoint config is described once, each model (of SSM-enabled variants) once.
- the roles holding the session policy come from one `ListEntitiesForPolicy`.
- published targets, when the sweep refreshes them (SWEEP_REFRESH_TARGETS), are read in bulk
  once per invocation.

The bulk read decides only that nothing needs doing. When the decision would change something
(attach, revert), the endpoint is read again live (`evaluate_endpoint`) before anything is
touched: Search results may lag behind the API by a few minutes.

Fan-out: when less than PAGE_BUDGET_MS of the Lambda's time is left, the run hands its Search
token and what it learnt to a new asynchronous invocation of the same function, and stops.

Cleanup, at the end of a complete run: the session policy is detached from roles no SSM-enabled
endpoint uses any more (an endpoint deleted, or switched off, while its event was lost). When in
doubt it stays: a run with an unreadable endpoint cleans nothing, and endpoints changed since
shortly before the run began are read live first. The guard's own unused configs go too.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ssm_guard import retry, usage
from ssm_guard.aws import iam as iam_api
from ssm_guard.aws import lambdas as lambda_api
from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.aws.errors import error_code, is_not_found
from ssm_guard.clone import (
    CREATED_BY_TAG,
    CREATED_BY_VALUE,
    GUARD_NAME_FRAGMENT,
    is_guard_config_name,
)
from ssm_guard.decisions import Kind, Plan, plan
from ssm_guard.discovery import (
    NOTHING_PUBLISHED,
    Published,
    TargetsAction,
    read_all_published,
    record_targets,
    refresh_targets,
)
from ssm_guard.endpoint import EndpointSnapshot, ModelInfo
from ssm_guard.enforce import Guard, Outcome, enforce_snapshot, evaluate_endpoint, record
from ssm_guard.events import EndpointEvent, MalformedEventError
from ssm_guard.idempotency import run_once
from ssm_guard.names import InvalidNameError, validate_name
from ssm_guard.observability import count, logger

SWEEP_MARKER = "ssm-guard-sweep"
"""Key of the payload a sweep hands to its continuation."""
PAGE_BUDGET_MS = 120_000
"""Time one more page may need (100 endpoints, throttled): below it, hand over."""
RECHECK_MARGIN_MS = usage.RECENT_MARGIN_MS
"""Endpoints modified this long before the run began are read live before cleanup: Search lags."""
MAX_PROBLEMS = 50
ACTING_DECISIONS = frozenset({"attached", "retry-later"})
"""Previews that mean the guard would change something. Reverts say so in details["action"]."""


@dataclass
class SweepState:
    """What a run carries from page to page, and from one invocation to its continuation."""

    run_id: str
    started_ms: int
    page: int = 0
    token: str | None = None
    endpoints: int = 0
    required_roles: set[str] = field(default_factory=set)
    """Names of roles some SSM-enabled endpoint uses: their session policy stays."""
    recheck: set[str] = field(default_factory=set)
    """Busy endpoints, read live before cleanup (an update in flight may bring SSM on)."""
    problems: list[str] = field(default_factory=list)
    decisions: Counter[str] = field(default_factory=Counter)
    guard_configs: set[str] = field(default_factory=set)
    """The guard's own configs (revert copies) endpoints run on: never cleaned up."""

    @classmethod
    def fresh(cls, run_id: str | None = None) -> SweepState:
        return cls(run_id=run_id or str(uuid.uuid4()), started_ms=int(time.time() * 1000))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_ms": self.started_ms,
            "page": self.page,
            "token": self.token,
            "endpoints": self.endpoints,
            "required_roles": sorted(self.required_roles),
            "recheck": sorted(self.recheck),
            "guard_configs": sorted(self.guard_configs),
            "problems": self.problems[:MAX_PROBLEMS],
            "decisions": dict(sorted(self.decisions.items())),
        }

    @classmethod
    def from_dict(cls, raw: object) -> SweepState:
        """Read a hand-over payload; anything else than what `to_dict` wrote is malformed."""
        if not isinstance(raw, Mapping):
            raise MalformedEventError("the sweep state is not an object")
        run_id, started, page = raw.get("run_id"), raw.get("started_ms"), raw.get("page")
        token, endpoints = raw.get("token"), raw.get("endpoints", 0)
        if not isinstance(run_id, str) or not run_id or len(run_id) > 200:
            raise MalformedEventError("the sweep state has no run_id")
        for value in (started, page, endpoints):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise MalformedEventError("the sweep state has a bad counter")
        if token is not None and not isinstance(token, str):
            raise MalformedEventError("the sweep state's token is not a string")
        keys = ("required_roles", "recheck", "problems", "guard_configs")
        lists = [raw.get(key, []) for key in keys]
        if not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in lists):
            raise MalformedEventError("the sweep state's lists must hold strings")
        decisions = raw.get("decisions", {})
        if not isinstance(decisions, Mapping) or not all(
            isinstance(v, int) for v in decisions.values()
        ):
            raise MalformedEventError("the sweep state's decisions must be counts")
        return cls(
            run_id=run_id,
            started_ms=int(started),  # type: ignore[arg-type]
            page=int(page),  # type: ignore[arg-type]
            token=token,
            endpoints=int(endpoints),
            required_roles=set(lists[0]),
            recheck=set(lists[1]),
            problems=list(lists[2]),
            guard_configs=set(lists[3]),
            decisions=Counter({str(k): int(v) for k, v in decisions.items()}),
        )


@dataclass
class Reading:
    """What one invocation has read already: each config and model once, and the targets
    published for every endpoint (None: targets are not refreshed, e.g. by the audit)."""

    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)
    published: dict[str, Published] | None = None


@dataclass
class Evaluation:
    """One endpoint as the sweep and `ssm-guard audit` see it."""

    name: str
    outcome: Outcome
    snapshot: EndpointSnapshot | None = None
    plan: Plan | None = None
    acted: bool = False
    """True when the preview said act and the endpoint was evaluated live."""


def tags_of(record: Mapping[str, Any]) -> dict[str, str]:
    """Search gives tags as a list of {Key, Value}."""
    tags: dict[str, str] = {}
    for tag in record.get("Tags") or []:
        if isinstance(tag, Mapping) and isinstance(tag.get("Key"), str):
            tags[str(tag["Key"])] = str(tag.get("Value") or "")
    return tags


def read_snapshot(guard: Guard, record: Mapping[str, Any], reading: Reading) -> EndpointSnapshot:
    """The endpoint from its Search record: the config and models come from `reading` when an
    earlier endpoint needed them too."""
    described = {k: v for k, v in record.items() if k != "Tags"}
    config_name = str(described["EndpointConfigName"])
    snapshot = sm_api.read_endpoint(
        guard.sagemaker,
        str(described["EndpointName"]),
        described=described,
        config=reading.configs.get(config_name),
        tags=tags_of(record),
        models=reading.models,
    )
    reading.configs.setdefault(config_name, dict(snapshot.config))
    return snapshot


def needs_action(preview: Outcome) -> bool:
    """Would the guard change something? Then the endpoint is read again live first.

    NOTE: alert-only outcomes (monitor mode, a granted exception) are not repeated hourly: the
    event that caused them alerted once; the sweep only adds missing policies and reverts.
    """
    return (
        str(preview.decision) in ACTING_DECISIONS
        or bool(preview.roles_attached)
        or preview.details.get("action") == "would-revert"
    )


def role_names(the_plan: Plan) -> set[str]:
    return {iam_api.role_name(role) for role in the_plan.roles}


def _failed(name: str, exc: ClientError) -> Outcome:
    return Outcome(
        endpoint_name=name,
        decision=Kind.FAILED,
        reason=retry.explain(exc),
        details={"error_code": error_code(exc), "failure": str(retry.classify(exc))},
    )


def evaluate(guard: Guard, record: Mapping[str, Any], reading: Reading) -> Evaluation:
    """Decide on the bulk-read endpoint; act only after a live read (see the module docstring).
    A failure to read or act is an outcome: one endpoint must not stop the sweep."""
    name = str(record.get("EndpointName", ""))
    try:
        snapshot = read_snapshot(guard, record, reading)
    except sm_api.EndpointNotFoundError:
        gone = Outcome(endpoint_name=name, decision=Kind.ENDPOINT_GONE, reason="deleted")
        return Evaluation(name, gone)
    except ClientError as exc:
        failed = _failed(name, exc)
        if is_not_found(exc):
            # NOTE: a config or model deleted under a live endpoint hides which roles it uses,
            # so the cleanup waits (the enforcer alerted when it saw it; enforce.unreadable).
            failed.reason = "its config or a model was deleted; cleanup waits until it is updated"
        return Evaluation(name, failed)
    the_plan = plan(snapshot, guard.settings)
    preview = enforce_snapshot(replace(guard, dry_run=True), snapshot)
    if guard.dry_run or not needs_action(preview):
        _refresh_targets(guard, snapshot, record, reading)
        return Evaluation(name, preview, snapshot, the_plan)
    try:
        outcome = evaluate_endpoint(guard, name)
    except ClientError as exc:
        return Evaluation(name, _failed(name, exc), snapshot, the_plan, acted=True)
    if outcome.decision in (Kind.ATTACHED, Kind.COMPLIANT):
        # A policy on a role replaces no instance: the targets stay what the logs say.
        _refresh_targets(guard, snapshot, record, reading)
    if guard.policy_holders is not None and outcome.roles_attached:
        # Later endpoints on the same role need not ask IAM again.
        attached = {iam_api.role_name(role) for role in outcome.roles_attached}
        guard.policy_holders = guard.policy_holders | attached
    if str(outcome.decision) == retry.RETRY_LATER and "recheck_at" not in outcome.details:
        endpoint = EndpointEvent(
            endpoint_name=name,
            endpoint_arn=snapshot.arn,
            status=snapshot.status,
            last_modified_ms=snapshot.last_modified_ms,
        )
        outcome = retry.follow_up(guard, outcome, endpoint=endpoint)
    return Evaluation(name, outcome, snapshot, the_plan, acted=True)


def _refresh_targets(
    guard: Guard, snapshot: EndpointSnapshot, record: Mapping[str, Any], reading: Reading
) -> None:
    """Publish the targets of an SSM endpoint (or remove those of one that lost SSM) as the
    targets function would. An endpoint the guard just reverted is skipped: its IN_SERVICE
    event refreshes them once the new instances run."""
    if reading.published is None or snapshot.status != "InService":
        return
    known = reading.published.get(snapshot.name, NOTHING_PUBLISHED)
    if not snapshot.ssm_variants and not known.exists:
        return
    try:
        outcome = refresh_targets(guard, snapshot, published=known, described=record)
    except ClientError as exc:
        logger.warning(
            "targets not refreshed",
            extra={"endpoint_name": snapshot.name, "reason": retry.explain(exc)},
        )
        return
    if outcome.action not in (TargetsAction.UNCHANGED, TargetsAction.NONE):
        record_targets(outcome)


def _note(state: SweepState, evaluation: Evaluation) -> None:
    state.endpoints += 1
    state.decisions[str(evaluation.outcome.decision)] += 1
    if evaluation.plan is not None:
        state.required_roles |= role_names(evaluation.plan)
    snapshot = evaluation.snapshot
    if snapshot is not None and snapshot.status in retry.BUSY_STATUSES:
        state.recheck.add(evaluation.name)
    if snapshot is not None and is_guard_config_name(snapshot.config_name):
        state.guard_configs.add(snapshot.config_name)
    if evaluation.outcome.decision is Kind.FAILED:
        state.problems.append(evaluation.name)
        logger.warning(
            "endpoint not evaluated",
            extra={"endpoint_name": evaluation.name, "reason": evaluation.outcome.reason},
        )
    elif evaluation.acted:
        record(evaluation.outcome)


def evaluate_page(guard: Guard, state: SweepState, reading: Reading) -> Iterator[Evaluation]:
    """Read one Search page from `state.token`, evaluate its endpoints, advance the state. The
    page's configs and models not read yet are read first, several at a time."""
    records, token = sm_api.search_endpoints(guard.sagemaker, state.token)
    names = [str(r["EndpointConfigName"]) for r in records if r.get("EndpointConfigName")]
    sm_api.read_configs_and_models(guard.sagemaker, names, reading.configs, reading.models)
    for raw in records:
        evaluation = evaluate(guard, raw, reading)
        _note(state, evaluation)
        yield evaluation
    state.page += 1
    state.token = token


def evaluate_all(
    guard: Guard, state: SweepState | None = None, reading: Reading | None = None
) -> Iterator[Evaluation]:
    """Every endpoint, page after page (`ssm-guard audit` uses this with a dry-run guard)."""
    state = state or SweepState.fresh()
    reading = reading or Reading()
    while True:
        yield from evaluate_page(guard, state, reading)
        if state.token is None:
            return


def clean_up(guard: Guard, state: SweepState, reading: Reading | None = None) -> dict[str, Any]:
    """Detach the session policy from roles no SSM-enabled endpoint uses, and delete the configs
    the guard made that no endpoint uses (module docstring). Endpoints changed since shortly
    before the run began (Search may not show them yet) and busy ones are read live first,
    reusing the configs and models `reading` holds."""
    if state.problems:
        logger.warning(
            "cleanup skipped: some endpoints could not be read",
            extra={"endpoints": state.problems[:MAX_PROBLEMS]},
        )
        return {"skipped": "some endpoints could not be read", "endpoints": state.problems}
    policy = guard.settings.policy_arn
    holders = iam_api.roles_holding_policy(guard.iam, policy) if policy else frozenset()
    roles = holders - state.required_roles
    configs = {
        name: arn
        for name, arn in _old_guard_configs(guard, int(time.time() * 1000)).items()
        if name not in state.guard_configs
    }
    if not roles and not configs:
        return {"detached": [], "configs_deleted": []}
    reading = reading or Reading()
    reader = usage.UsageReader(
        guard,
        usage.Wanted(roles=frozenset(roles), configs=frozenset(configs)),
        configs=reading.configs,
        models=reading.models,
    )
    try:
        reader.add_recent(state.started_ms - RECHECK_MARGIN_MS, also=state.recheck)
    except ClientError as exc:
        logger.warning(
            "cleanup skipped: recent endpoints could not be read",
            extra={"reason": retry.explain(exc)},
        )
        return {"skipped": "recent endpoints could not be read"}
    recent = reader.usage
    return {
        "detached": _detach(guard, sorted(roles - recent.roles)),
        "configs_deleted": _delete_configs(
            guard, {n: a for n, a in sorted(configs.items()) if n not in recent.configs}
        ),
    }


def _detach(guard: Guard, roles: list[str]) -> list[str]:
    detached: list[str] = []
    for role in roles:
        if not guard.dry_run:
            try:
                iam_api.detach_policy_by_role_name(guard.iam, role, guard.settings.policy_arn)
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
                continue
            count("SessionPolicyDetached")
            logger.info(
                "session policy detached: no SSM-enabled endpoint uses the role",
                extra={"role_name": role},
            )
        detached.append(role)
    return detached


def _old_guard_configs(guard: Guard, now_ms: int) -> dict[str, str]:
    """Name -> ARN of the configs named as the guard names its copies, older than the
    guardrail's minimum age (a revert in flight may be about to use a young one)."""
    from ssm_guard.guardrail import CLEANUP_MIN_AGE

    oldest = now_ms - int(CLEANUP_MIN_AGE.total_seconds() * 1000)
    found: dict[str, str] = {}
    listed = sm_api.list_endpoint_configs(guard.sagemaker, name_contains=GUARD_NAME_FRAGMENT)
    for summary in listed:
        name = str(summary.get("EndpointConfigName", ""))
        created = summary.get("CreationTime")
        if not is_guard_config_name(name) or not isinstance(created, datetime):
            continue
        if created.timestamp() * 1000 <= oldest:
            found[name] = str(summary.get("EndpointConfigArn", ""))
    return found


def _delete_configs(guard: Guard, configs: Mapping[str, str]) -> list[str]:
    """Delete the unused copies that carry the guard's created-by tag (a name alone could be a
    person's config)."""
    deleted: list[str] = []
    for name, arn in configs.items():
        try:
            tags = sm_api.list_tags(guard.sagemaker, arn)
        except ClientError as exc:
            if is_not_found(exc):
                continue
            raise
        if tags.get(CREATED_BY_TAG) != CREATED_BY_VALUE:
            continue
        if not guard.dry_run:
            try:
                sm_api.delete_endpoint_config(guard.sagemaker, name)
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
                continue
            count("ConfigCleanedUp")
            logger.info("unused config deleted", extra={"config_name": name})
        deleted.append(name)
    return deleted


@dataclass
class SweepReport:
    state: SweepState
    finished: bool
    cleanup: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.state.run_id,
            "finished": self.finished,
            "pages": self.state.page,
            "endpoints": self.state.endpoints,
            "decisions": dict(sorted(self.state.decisions.items())),
            "problems": self.state.problems[:MAX_PROBLEMS],
            "cleanup": self.cleanup,
        }


def run_sweep(
    guard: Guard,
    state: SweepState,
    *,
    time_left_ms: Callable[[], int] | None = None,
    hand_over: Callable[[SweepState], None] | None = None,
) -> SweepReport:
    """Sweep from `state` to the last page, or hand over when time runs short; then clean up."""
    if guard.settings.policy_arn:
        guard.policy_holders = iam_api.roles_holding_policy(guard.iam, guard.settings.policy_arn)
    reading = Reading(published=read_all_published(guard) if refreshes_targets() else None)
    while True:
        for _ in evaluate_page(guard, state, reading):
            pass
        if state.token is None:
            break
        if hand_over is not None and time_left_ms is not None and time_left_ms() < PAGE_BUDGET_MS:
            # NOTE: a Search NextToken is taken to stay valid for the seconds a hand-over takes
            # (its lifetime is undocumented); should it expire, that continuation fails, is
            # retried once and dead-lettered, and the next scheduled run starts afresh.
            hand_over(state)
            logger.info(
                "sweep continues in a new invocation",
                extra={"run_id": state.run_id, "page": state.page, "endpoints": state.endpoints},
            )
            count("SweepHandedOver")
            return SweepReport(state, finished=False)
    report = SweepReport(state, finished=True, cleanup=clean_up(guard, state, reading))
    logger.info("sweep finished", extra=report.as_dict())
    count("SweepEndpoints", state.endpoints)
    return report


def refreshes_targets(environ: Mapping[str, str] | None = None) -> bool:
    """SWEEP_REFRESH_TARGETS=true: the sweep also publishes targets. Off by default: the targets
    function's own schedule (DiscoverySchedule) refreshes every endpoint already, and doing it
    twice costs a log-stream read per SSM endpoint per run."""
    env = os.environ if environ is None else environ
    return env.get("SWEEP_REFRESH_TARGETS", "").strip().lower() in {"1", "true", "yes"}


def state_from_event(event: object) -> SweepState:
    """A continuation's state, or a fresh run (a `Scheduled Event`, or any object invoked by
    hand). The run id of a scheduled run is the event id, so a duplicate delivery is one run."""
    if not isinstance(event, Mapping):
        raise MalformedEventError("the event is not a JSON object")
    if SWEEP_MARKER in event:
        return SweepState.from_dict(event[SWEEP_MARKER])
    event_id = event.get("id")
    return SweepState.fresh(event_id if isinstance(event_id, str) and event_id else None)


def on_sweep(event: Any, context: Any = None, guard: Guard | None = None) -> dict[str, Any]:
    """The work behind the sweep function."""
    try:
        state = state_from_event(event)
    except MalformedEventError as exc:
        logger.warning("event rejected", extra={"reason": str(exc)})
        count("MalformedEvent")
        return {"decision": str(Kind.MALFORMED_EVENT), "reason": str(exc)}
    sweep_guard = guard or Guard.from_env()
    logger.append_keys(run_id=state.run_id)

    def hand_over(next_state: SweepState) -> None:
        function_arn = str(getattr(context, "invoked_function_arn", "") or "")
        payload = {SWEEP_MARKER: next_state.to_dict()}
        lambda_api.invoke_async(sweep_guard.client("lambda"), function_arn, payload)

    time_left = getattr(context, "get_remaining_time_in_millis", None)
    return run_once(
        f"{state.run_id}|{state.page}",
        lambda: run_sweep(
            sweep_guard,
            state,
            time_left_ms=time_left if context is not None else None,
            hand_over=hand_over if context is not None else None,
        ).as_dict(),
        namespace="sweep",
        context=context,
    )


def evaluate_names(guard: Guard, names: list[str]) -> Iterator[Evaluation]:
    """Named endpoints, each read live (`ssm-guard audit NAME...`). Names are checked first."""
    for name in names:
        try:
            validate_name(name)
        except InvalidNameError as exc:
            raise ValueError(str(exc)) from exc
    reading = Reading()
    for name in names:
        try:
            described = sm_api.describe_endpoint(guard.sagemaker, name)
        except sm_api.EndpointNotFoundError:
            gone = Outcome(
                endpoint_name=name, decision=Kind.ENDPOINT_GONE, reason="no such endpoint"
            )
            yield Evaluation(name, gone)
            continue
        except ClientError as exc:
            if is_not_found(exc):
                yield Evaluation(name, Outcome(endpoint_name=name, decision=Kind.ENDPOINT_GONE))
                continue
            raise
        tags = sm_api.list_tags(guard.sagemaker, str(described["EndpointArn"]))
        yield evaluate(
            guard, {**described, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}, reading
        )
