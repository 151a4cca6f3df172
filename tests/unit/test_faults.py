"""Faults: throttling on every call in turn, busy endpoints retried with backoff until they settle
or a maximum age sends them to the dead-letter queue, permanent errors reported once, and things
changing under the guard's feet (an endpoint deleted, a role deleted)."""

from __future__ import annotations

import pytest
from _reliability import (
    Faults,
    LambdaContext,
    dead_letter_queue,
    fire,
    idempotency_table,
    injected,
    recording_calls,
    retries_configured,
    scheduled_retries,
    set_status,
    state_change_event,
)
from botocore.exceptions import ClientError, EndpointConnectionError

from ssm_guard import clients, retry
from ssm_guard.aws import iam as iam_api
from ssm_guard.decisions import Kind
from ssm_guard.enforce import Guard, evaluate_endpoint
from ssm_guard.events import MalformedEventError, parse_endpoint_event
from ssm_guard.handlers import on_endpoint_state_change
from ssm_guard.settings import Settings

pytestmark = pytest.mark.unit


def _error(code: str, message: str = "", status: int = 400, op: str = "Op") -> ClientError:
    response = {"Error": {"Code": code, "Message": message}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, op)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_error("ThrottlingException", "Rate exceeded"), retry.Failure.TRANSIENT),
        (_error("Throttling", "Rate exceeded"), retry.Failure.TRANSIENT),
        (_error("TooManyUpdates"), retry.Failure.TRANSIENT),
        (_error("InternalFailure", status=500), retry.Failure.TRANSIENT),
        (_error("SomethingNew", status=503), retry.Failure.TRANSIENT),
        (EndpointConnectionError(endpoint_url="https://x"), retry.Failure.TRANSIENT),
        (
            _error("ValidationException", 'Cannot update in-progress endpoint "a"'),
            retry.Failure.BUSY,
        ),
        (_error("AccessDeniedException", "not authorized"), retry.Failure.PERMANENT),
        (_error("AccessDenied", "not authorized"), retry.Failure.PERMANENT),
        (_error("NoSuchEntity", "role not found"), retry.Failure.PERMANENT),
        (_error("ValidationException", "Could not find endpoint"), retry.Failure.PERMANENT),
        (_error("ResourceLimitExceeded"), retry.Failure.PERMANENT),
    ],
)
def test_failures_are_classified_by_what_a_retry_can_do(exc, expected) -> None:
    assert retry.classify(exc) is expected


def test_explanations_say_what_fixes_the_problem() -> None:
    denied = _error("AccessDeniedException", "no", op="AttachRolePolicy")
    assert "AttachRolePolicy" in retry.explain(denied)
    assert "template.yaml" in retry.explain(denied)
    not_listed = _error("ValidationException", "The account is not allowlisted for EnableSSMAccess")
    assert "allow-list" in retry.explain(not_listed)
    assert "AWS Support" in retry.explain(not_listed)


def test_backoff_doubles_to_a_ceiling_and_stops_at_the_maximum_age() -> None:
    assert [retry.backoff_seconds(n) for n in range(1, 7)] == [60, 120, 240, 480, 900, 900]
    start = retry.RetryState(attempt=0, first_seen_ms=0)
    assert retry.next_delay(start, 0, max_age_minutes=60) == 60
    late = retry.RetryState(attempt=6, first_seen_ms=0)
    assert retry.next_delay(late, 50 * 60_000, max_age_minutes=60) is None
    assert retry.next_delay(late, 40 * 60_000, max_age_minutes=60) == 900


@pytest.mark.parametrize(
    "marker",
    [
        "yes",
        {"attempt": "2", "first_seen_ms": 1},
        {"attempt": 0, "first_seen_ms": 1},
        {"attempt": True, "first_seen_ms": 1},
        {"attempt": 10**9, "first_seen_ms": 1},
        {"attempt": 1, "first_seen_ms": -5},
    ],
)
def test_a_tampered_retry_marker_makes_the_event_malformed(marker) -> None:
    with pytest.raises(MalformedEventError):
        retry.read_state({"ssm-guard-retry": marker})


# -- busy endpoints ---------------------------------------------------------------------------


@pytest.fixture
def wired(account, monkeypatch):
    """Idempotency table, dead-letter queue and Scheduler retries, as the template wires them."""
    idempotency_table(monkeypatch)
    retries_configured(monkeypatch, max_age_minutes=30)
    return dead_letter_queue(monkeypatch)


def _ssm_endpoint(account, name: str) -> str:
    role = account.role(f"{name}-role")
    account.model(f"{name}-model", role)
    account.endpoint(
        name, [{"VariantName": "v", "ModelName": f"{name}-model", "EnableSSMAccess": True}]
    )
    return role


def test_a_busy_endpoint_is_retried_until_it_settles(account, guard, wired) -> None:
    # GIVEN an IN_SERVICE event for an endpoint that is Updating again by the time it is read
    role = _ssm_endpoint(account, "busy-ep")
    set_status("busy-ep", "Updating")
    context = LambdaContext()
    # WHEN the event is handled
    first = on_endpoint_state_change(state_change_event("busy-ep"), guard, context)
    # THEN nothing is attached yet and one retry is scheduled, a minute later, deleting itself
    assert first["decision"] == "not-in-service"
    assert first["details"]["retry"]["state"] == "scheduled"
    assert account.attached(role) == []
    (scheduled,) = scheduled_retries()
    assert scheduled["after"] == "DELETE"
    assert scheduled["event"]["ssm-guard-retry"]["attempt"] == 1
    # WHEN the retry fires while the endpoint is still busy
    second = on_endpoint_state_change(fire(scheduled), guard, context)
    # THEN a second attempt is scheduled, with a longer delay
    (again,) = scheduled_retries()
    assert second["details"]["retry"]["attempt"] == 2
    assert again["event"]["ssm-guard-retry"]["attempt"] == 2
    assert again["at"] > scheduled["at"]
    # WHEN the endpoint settles and the next retry fires
    set_status("busy-ep", "InService")
    third = on_endpoint_state_change(fire(again), guard, context)
    # THEN the policy is attached and no retry is left
    assert third["decision"] == "attached"
    assert account.policy_arn in account.attached(role)
    assert scheduled_retries() == []
    assert wired.read() == []


def test_copies_of_a_busy_event_schedule_one_retry(account, guard, wired) -> None:
    _ssm_endpoint(account, "busy-ep")
    set_status("busy-ep", "Creating")
    for event_id in ("a", "b", "c"):
        event = {**state_change_event("busy-ep"), "id": event_id}
        on_endpoint_state_change(event, guard, LambdaContext())
    assert len(scheduled_retries()) == 1


def test_an_endpoint_busy_past_the_maximum_age_goes_to_the_dead_letter_queue(
    account, guard, wired
) -> None:
    # GIVEN a retry event first seen 31 minutes ago (maximum age 30) for a still-busy endpoint
    role = _ssm_endpoint(account, "stuck-ep")
    set_status("stuck-ep", "Updating")
    old = retry.now_ms() - 31 * 60_000
    event = {
        **state_change_event("stuck-ep"),
        "ssm-guard-retry": {"attempt": 9, "first_seen_ms": old, "reason": "busy"},
    }
    # WHEN it is handled
    result = on_endpoint_state_change(event, guard, LambdaContext())
    # THEN no retry is scheduled, the dead-letter queue says why, and nothing changed
    assert result["decision"] == "failed"
    assert scheduled_retries() == []
    (letter,) = wired.read()
    assert letter["kind"] == "retries-exhausted"
    assert letter["endpoint_name"] == "stuck-ep"
    assert "9 retries" in letter["reason"]
    assert letter["event"]["detail"]["EndpointName"] == "stuck-ep"
    assert account.attached(role) == []


def test_retries_without_a_scheduler_role_are_reported_not_lost(account, guard, monkeypatch):
    # GIVEN no Scheduler role configured (the CLI, or a misdeployed stack)
    monkeypatch.delenv("RECHECK_ROLE_ARN", raising=False)
    _ssm_endpoint(account, "busy-ep")
    set_status("busy-ep", "Updating")
    # WHEN a busy endpoint is met THEN the outcome says no retry was scheduled
    result = on_endpoint_state_change(state_change_event("busy-ep"), guard)
    assert result["details"]["retry"]["state"] == "not-configured"


# -- permanent and transient errors -------------------------------------------------------------


def test_access_denied_is_reported_once_and_not_retried(account, wired) -> None:
    # GIVEN a guard whose role may not attach policies
    role = _ssm_endpoint(account, "dev-ep")
    faults = Faults()
    faults.add("AttachRolePolicy", "AccessDenied", "not authorized to AttachRolePolicy", times=9)
    with injected(faults):
        guard = Guard(
            settings=Settings(policy_arn=account.policy_arn),
            sagemaker=clients.sagemaker(),
            iam=clients.iam(),
        )
        # WHEN two copies of the event arrive
        results = [
            on_endpoint_state_change({**state_change_event("dev-ep"), "id": i}, guard)
            for i in ("1", "2")
        ]
    # THEN the first is answered (no raise, so no Lambda retry) and reported in the queue; the
    # copy reuses the answer, so the report is not repeated
    assert results[0]["decision"] == "failed"
    assert "AccessDenied" in results[0]["reason"]
    assert results[1]["duplicate"] is True
    assert faults.fired["AttachRolePolicy"] == 1
    (letter,) = wired.read()
    assert letter["kind"] == "permanent-error"
    assert account.attached(role) == []


def test_throttling_beyond_every_retry_raises_so_lambda_retries(account, wired) -> None:
    # GIVEN DescribeEndpoint throttled on the first try and every retry botocore makes
    role = _ssm_endpoint(account, "dev-ep")
    faults = Faults()
    attempts = clients.RETRY_ATTEMPTS + 1  # max_attempts counts the retries after the first
    faults.add("DescribeEndpoint", times=attempts)
    event = state_change_event("dev-ep")
    with injected(faults):
        guard = Guard(
            settings=Settings(policy_arn=account.policy_arn),
            sagemaker=clients.sagemaker(),
            iam=clients.iam(),
        )
        # WHEN the event is handled THEN the error reaches Lambda (which retries the event)
        with pytest.raises(ClientError):
            on_endpoint_state_change(event, guard)
        # AND Lambda's retry, once the throttling is over, does the work (no record was left)
        result = on_endpoint_state_change(event, guard)
    assert faults.fired["DescribeEndpoint"] == attempts
    assert result["decision"] == "attached"
    assert account.policy_arn in account.attached(role)
    assert wired.read() == []


# -- throttling on each call in turn --------------------------------------------------------------


def test_throttling_once_on_each_call_in_turn_ends_in_the_right_state(account, monkeypatch):
    # GIVEN an SSM endpoint on two roles, and the calls one evaluation makes
    idempotency_table(monkeypatch)
    role_a = account.role("team-a")
    role_b = account.role("team-b")
    account.model("ma", role_a)
    account.model("mb", role_b, containers=2)
    account.endpoint(
        "dev-ep",
        [
            {"VariantName": "a", "ModelName": "ma", "EnableSSMAccess": True},
            {"VariantName": "b", "ModelName": "mb", "EnableSSMAccess": True},
        ],
    )
    policy = account.policy_arn

    def reset() -> None:
        for name in ("team-a", "team-b"):
            if policy in account.attached(f"arn:aws:iam::123456789012:role/{name}"):
                account.iam.detach_role_policy(RoleName=name, PolicyArn=policy)

    with recording_calls() as calls:
        guard = Guard(
            settings=Settings(policy_arn=policy), sagemaker=account.sagemaker, iam=account.iam
        )
        on_endpoint_state_change(state_change_event("dev-ep", modified_ms=0), guard)
    operations = list(dict.fromkeys(op for _, op in calls.calls))
    assert {"DescribeEndpoint", "DescribeEndpointConfig", "AttachRolePolicy"} <= set(operations)
    # WHEN each operation in turn is throttled once
    faults = Faults()
    with injected(faults):
        clients.client.cache_clear()  # the idempotency table's client too
        guard = Guard(
            settings=Settings(policy_arn=policy),
            sagemaker=clients.sagemaker(),
            iam=clients.iam(),
        )
        for index, operation in enumerate(operations, start=1):
            reset()
            iam_api._quota.cache_clear()  # read once per process: make every turn call it
            faults.add(operation)
            result = on_endpoint_state_change(
                state_change_event("dev-ep", modified_ms=index), guard
            )
            # THEN botocore retried it and the evaluation ended as without the fault
            assert faults.fired[operation] == 1, operation
            assert result["decision"] == "attached", operation
            assert policy in account.attached(role_a), operation
            assert policy in account.attached(role_b), operation


# -- the world changing mid-flight ----------------------------------------------------------------


def test_an_endpoint_deleted_mid_flight_is_gone_and_nothing_is_attached(account) -> None:
    # GIVEN an endpoint deleted (with its config) just after DescribeEndpoint answered
    role = _ssm_endpoint(account, "doomed")

    def delete() -> None:
        account.sagemaker.delete_endpoint(EndpointName="doomed")
        account.sagemaker.delete_endpoint_config(EndpointConfigName="doomed-config")

    faults = Faults()
    faults.add("DescribeEndpointConfig", action=delete)
    with injected(faults):
        guard = Guard(
            settings=Settings(policy_arn=account.policy_arn),
            sagemaker=clients.sagemaker(),
            iam=clients.iam(),
        )
        # WHEN it is evaluated
        outcome = evaluate_endpoint(guard, "doomed")
    # THEN the outcome says so and no role was touched
    assert faults.fired["DescribeEndpointConfig"] == 1
    assert outcome.decision is Kind.ENDPOINT_GONE
    assert account.attached(role) == []


def test_a_deleted_role_is_reported_and_the_other_roles_are_not_half_done(account) -> None:
    # GIVEN two SSM variants on two roles; the second role is deleted between its read and the
    # attach
    role_a, role_b = account.role("keep"), account.role("vanish")
    account.model("ma", role_a)
    account.model("mb", role_b)
    account.endpoint(
        "two-roles",
        [
            {"VariantName": "a", "ModelName": "ma", "EnableSSMAccess": True},
            {"VariantName": "b", "ModelName": "mb", "EnableSSMAccess": True},
        ],
    )
    faults = Faults()
    faults.add("AttachRolePolicy")  # first attach (role "keep") goes through after a throttle
    faults.add("AttachRolePolicy", action=lambda: account.iam.delete_role(RoleName="vanish"))
    with injected(faults):
        guard = Guard(
            settings=Settings(policy_arn=account.policy_arn),
            sagemaker=clients.sagemaker(),
            iam=clients.iam(),
        )
        outcome = evaluate_endpoint(guard, "two-roles")
    # THEN the decision names the missing role problem and the first attach was rolled back
    assert outcome.decision is Kind.ROLE_MISSING
    assert account.attached(role_a) == []


def test_a_role_deleted_before_the_event_is_reported(account, guard) -> None:
    _ssm_endpoint(account, "orphan")
    account.iam.delete_role(RoleName="orphan-role")
    result = on_endpoint_state_change(state_change_event("orphan"), guard)
    assert result["decision"] == "role-missing"


def test_a_stale_event_acts_on_the_live_state(account, guard) -> None:
    # GIVEN an IN_SERVICE event for an endpoint whose SSM access was switched off since
    role = account.role("r")
    account.model("m", role)
    account.endpoint("moved-on", [{"VariantName": "v", "ModelName": "m"}])
    event = state_change_event("moved-on", modified_ms=1)
    assert parse_endpoint_event(event).status == "InService"
    # WHEN it arrives THEN the live config decides: nothing to attach
    assert on_endpoint_state_change(event, guard)["decision"] == "no-ssm"
    assert account.attached(role) == []


# -- a published parameter changed by someone else ------------------------------------------------


@pytest.mark.parametrize(
    "edit",
    [
        "not json at all",
        '{"endpoint": "dev-ep", "targets": []}',
        '{"endpoint": "dev-ep", "targets": [{"target": "sagemaker-endpoint:dev-ep_blue_i-0"}]}',
    ],
)
def test_a_target_parameter_edited_by_hand_is_put_right(account, guard, edit) -> None:
    # GIVEN published targets, then someone overwrites the parameter
    from _target_streams import PREFIX, instance_id, published_value, ssm_endpoint, write_ssm_stream

    from ssm_guard.discovery import refresh_targets

    ssm_endpoint(account, "dev-ep")
    write_ssm_stream("dev-ep", "blue", instance_id(1), [None])
    refresh_targets(guard, "dev-ep")
    right = published_value("dev-ep")["targets"]
    ssm = guard.client("ssm")
    ssm.put_parameter(Name=f"{PREFIX}/dev-ep", Value=edit, Type="String", Overwrite=True)
    # WHEN the targets are refreshed (the next event, the schedule or the sweep)
    outcome = refresh_targets(guard, "dev-ep")
    # THEN the parameter says again what the log streams say
    assert str(outcome.action) == "published"
    assert published_value("dev-ep")["targets"] == right


def test_the_sweep_puts_a_hand_edited_parameter_right(account, guard, monkeypatch) -> None:
    from _target_streams import PREFIX, instance_id, published_value, ssm_endpoint, write_ssm_stream

    from ssm_guard.sweep import SweepState, run_sweep

    # GIVEN an SSM endpoint's targets published, then overwritten by someone else
    monkeypatch.setenv("SWEEP_REFRESH_TARGETS", "true")
    ssm_endpoint(account, "dev-ep")
    write_ssm_stream("dev-ep", "blue", instance_id(1), [None])
    run_sweep(guard, SweepState.fresh())
    right = published_value("dev-ep")["targets"]
    guard.client("ssm").put_parameter(
        Name=f"{PREFIX}/dev-ep", Value="{}", Type="String", Overwrite=True
    )
    # WHEN the sweep runs again THEN the published targets are right again
    run_sweep(guard, SweepState.fresh())
    assert published_value("dev-ep")["targets"] == right


# -- the guardrail's busy endpoints ---------------------------------------------------------------


def _production(account, name: str) -> str:
    role = account.role(f"{name}-role")
    account.model(f"{name}-model", role)
    account.endpoint(
        name,
        [{"VariantName": "blue", "ModelName": f"{name}-model", "EnableSSMAccess": True}],
        tags={"environment": "production"},
    )
    return str(account.sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"])


def test_a_revert_refused_as_in_progress_is_retried_until_it_goes_through(
    account, guard, updatable, alert_inbox, wired
) -> None:
    # GIVEN a production endpoint with SSM on whose UpdateEndpoint says "in progress"
    _production(account, "prod-ep")
    updatable.busy = True
    # WHEN its IN_SERVICE event arrives
    first = on_endpoint_state_change(state_change_event("prod-ep"), guard, LambdaContext())
    # THEN the guardrail answers retry-later and one retry is scheduled, nobody alerted yet
    assert first["decision"] == "retry-later"
    (scheduled,) = scheduled_retries()
    assert alert_inbox.sns() == []
    # WHEN the retry fires after the other update finished
    updatable.busy = False
    second = on_endpoint_state_change(fire(scheduled), guard, LambdaContext())
    # THEN the endpoint is reverted once, alerted once, and no retry is left
    assert second["decision"] == "reverted"
    assert len(updatable.updates) == 2
    assert len(alert_inbox.sns()) == 1
    assert scheduled_retries() == []


def test_a_recheck_that_finds_the_endpoint_busy_schedules_a_retry(
    account, guard, updatable, alert_inbox, wired
) -> None:
    # GIVEN the guard's own re-check event (exception expiry) for a busy production endpoint
    from ssm_guard.triggers import recheck_event

    arn = _production(account, "prod-ep")
    updatable.busy = True
    result = on_endpoint_state_change(recheck_event("prod-ep", arn, "expiry"), guard)
    # THEN the retry is scheduled as for any event, as an endpoint state change
    assert result["decision"] == "retry-later"
    (scheduled,) = scheduled_retries()
    assert scheduled["event"]["detail"]["EndpointArn"] == arn
    assert scheduled["event"]["ssm-guard-retry"]["attempt"] == 1
