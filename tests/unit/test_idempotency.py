"""Duplicates and concurrent copies of one event: the work is done once (Powertools Idempotency
on a moto DynamoDB table)."""

from __future__ import annotations

import threading

import pytest
from _reliability import (
    LambdaContext,
    idempotency_table,
    recording_calls,
    state_change_event,
)

from ssm_guard.events import parse_endpoint_event
from ssm_guard.handlers import on_endpoint_state_change
from ssm_guard.idempotency import DUPLICATE_IN_PROGRESS, run_once

pytestmark = pytest.mark.unit


@pytest.fixture
def table(account, monkeypatch) -> str:
    return idempotency_table(monkeypatch)


def _dev_endpoint(account, name: str = "dev-ep") -> str:
    role = account.role(f"{name}-role")
    account.model(f"{name}-model", role)
    account.endpoint(
        name, [{"VariantName": "v", "ModelName": f"{name}-model", "EnableSSMAccess": True}]
    )
    return role


def test_copies_of_one_state_change_with_different_ids_attach_once(account, guard, table) -> None:
    # GIVEN an SSM endpoint whose role lacks the policy, and three copies of its IN_SERVICE event
    # with different event ids, one spelling the status and the time differently
    role = _dev_endpoint(account)
    first = state_change_event("dev-ep")
    second = {**state_change_event("dev-ep"), "id": "another-id"}
    third = state_change_event("dev-ep")
    third["id"] = "third-id"
    third["detail"] = {**third["detail"], "EndpointStatus": "InService"}
    third["detail"]["LastModifiedTime"] = "2025-12-03T14:06:37Z"
    assert (
        parse_endpoint_event(third).idempotency_key == parse_endpoint_event(first).idempotency_key
    )
    # WHEN all three are handled
    with recording_calls() as calls:
        results = [on_endpoint_state_change(e, guard) for e in (first, second, third)]
    # THEN the policy was attached by the first only; the others reuse its result. Each copy
    # reads the endpoint (the work is claimed after the reads, once it may change something);
    # only the first asks IAM and writes
    assert calls.count("AttachRolePolicy") == 1
    assert calls.count("ListAttachedRolePolicies") == 1
    assert calls.count("DescribeEndpoint") == 3
    assert [r["decision"] for r in results] == ["attached"] * 3
    assert [r.get("duplicate", False) for r in results] == [False, True, True]
    assert account.policy_arn in account.attached(role)


def test_a_new_state_change_of_the_same_endpoint_is_new_work(account, guard, table) -> None:
    _dev_endpoint(account)
    on_endpoint_state_change(state_change_event("dev-ep", modified_ms=1), guard)
    with recording_calls() as calls:
        later = on_endpoint_state_change(state_change_event("dev-ep", modified_ms=2), guard)
    # The second change is evaluated live again (and finds the role already compliant).
    assert calls.count("DescribeEndpoint") == 1
    assert later["decision"] == "compliant"
    assert not later.get("duplicate")


def test_a_copy_arriving_while_the_first_runs_is_skipped(account, table) -> None:
    # GIVEN a first copy whose work is stopped half-way
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow_work() -> dict[str, str]:
        runs.append("slow")
        started.set()
        release.wait(timeout=30)
        return {"decision": "attached"}

    first: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: first.update(run_once("key-1", slow_work, context=LambdaContext()))
    )
    worker.start()
    assert started.wait(timeout=30)
    # WHEN a second copy arrives meanwhile, and a third once the first finished
    second = run_once("key-1", lambda: runs.append("second") or {"decision": "x"})
    release.set()
    worker.join(timeout=30)
    third = run_once("key-1", lambda: runs.append("third") or {"decision": "x"})
    # THEN only the first did the work; the second was skipped, the third got its result
    assert runs == ["slow"]
    assert second["decision"] == DUPLICATE_IN_PROGRESS
    assert first == {"decision": "attached"}
    assert third == {"decision": "attached", "duplicate": True}


def test_work_that_failed_leaves_no_record_so_a_retry_runs_it(account, table) -> None:
    def failing() -> dict[str, str]:
        raise RuntimeError("throttled beyond every retry")

    with pytest.raises(RuntimeError):
        run_once("key-2", failing)
    assert run_once("key-2", lambda: {"decision": "attached"}) == {"decision": "attached"}


def test_without_a_table_the_work_runs_every_time(monkeypatch) -> None:
    monkeypatch.delenv("IDEMPOTENCY_TABLE", raising=False)
    runs: list[int] = []
    for _ in range(2):
        run_once("key-3", lambda: runs.append(1) or {"decision": "x"})
    assert runs == [1, 1]


def test_each_retry_attempt_is_new_work(account, guard, table) -> None:
    # GIVEN an event already handled, and the same event re-sent as retry attempt 1
    _dev_endpoint(account)
    event = state_change_event("dev-ep")
    on_endpoint_state_change(event, guard)
    retried = {**event, "ssm-guard-retry": {"attempt": 1, "first_seen_ms": 1, "reason": "busy"}}
    # WHEN the retry arrives THEN it is evaluated again, not answered from the first result
    with recording_calls() as calls:
        result = on_endpoint_state_change(retried, guard)
    assert calls.count("DescribeEndpoint") == 1
    assert not result.get("duplicate")
