"""The sweep: every endpoint evaluated like its events, in about one AWS call per endpoint, handing
over to a new invocation when time runs short, and cleaning up what lost events left behind."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from _reliability import (
    LambdaContext,
    idempotency_table,
    recording_calls,
    set_status,
)
from conftest import ACCOUNT

from ssm_guard import sweep
from ssm_guard.decisions import Kind
from ssm_guard.enforce import record
from ssm_guard.sweep import SweepState, on_sweep, run_sweep

pytestmark = pytest.mark.unit
# moto drops EnableNetworkIsolation; a first-party algorithm image is as unreachable for SSM.
ALGORITHM_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"


class PagedSearch:
    """moto's Search returns everything at once; AWS pages by 100. This client pages moto's
    answer, optionally hiding endpoints (Search's index lags behind the API)."""

    def __init__(self, real: Any, hide: frozenset[str] = frozenset()) -> None:
        self._real = real
        self.hide = set(hide)
        self.tokens: list[str | None] = []
        self._everything: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def search(self, **kwargs: Any) -> dict[str, Any]:
        if not kwargs.get("NextToken"):  # a new listing: what the index holds now
            self._everything = [
                r
                for r in self._real.search(Resource=kwargs["Resource"])["Results"]
                if r["Endpoint"]["EndpointName"] not in self.hide
            ]
        everything = self._everything
        start = int(kwargs.get("NextToken") or 0)
        size = kwargs.get("MaxResults", 100)
        self.tokens.append(kwargs.get("NextToken"))
        page: dict[str, Any] = {"Results": everything[start : start + size]}
        if start + size < len(everything):
            page["NextToken"] = str(start + size)
        return page


@pytest.fixture
def paged(account, guard) -> PagedSearch:
    client = PagedSearch(account.sagemaker)
    account.sagemaker = client
    guard.sagemaker = client
    return client


def _endpoint(account, name: str, role: str, *, ssm: bool, tags=None, image=None) -> None:
    if image:
        account.sagemaker.create_model(
            ModelName=f"{name}-m", ExecutionRoleArn=role, PrimaryContainer={"Image": image}
        )
    else:
        account.model(f"{name}-m", role)
    variant = {"VariantName": "v", "ModelName": f"{name}-m", "EnableSSMAccess": ssm}
    account.endpoint(name, [variant], tags=tags)


def test_the_sweep_attaches_what_events_missed_and_leaves_the_rest(account, guard, paged):
    # GIVEN 250 endpoints (three pages): most without SSM, one SSM endpoint whose event was
    # lost (its role lacks the policy), one already compliant, one SSM cannot reach
    missed, compliant, isolated = (account.role(n) for n in ("missed", "compliant", "isolated"))
    account.iam.attach_role_policy(RoleName="compliant", PolicyArn=account.policy_arn)
    plain = account.role("plain")
    for i in range(247):
        _endpoint(account, f"plain-{i:03d}", plain, ssm=False)
    _endpoint(account, "lost-event", missed, ssm=True)
    _endpoint(account, "fine", compliant, ssm=True)
    _endpoint(account, "sealed", isolated, ssm=True, image=ALGORITHM_IMAGE)
    # WHEN the sweep runs
    report = run_sweep(guard, SweepState.fresh()).as_dict()
    # THEN every endpoint was seen, the missing policy attached, nothing else touched
    assert report["finished"] is True
    assert report["pages"] == 3
    assert report["endpoints"] == 250
    assert report["decisions"] == {
        "no-ssm": 247,
        "attached": 1,
        "compliant": 1,
        "ssm-unreachable": 1,
    }
    assert account.policy_arn in account.attached(missed)
    assert account.attached(isolated) == []
    assert account.attached(plain) == []


def test_unreachable_containers_are_explained_in_the_logs(account, guard, paged, caplog):
    # GIVEN an SSM endpoint serving a built-in algorithm container
    _endpoint(account, "sealed", account.role("isolated"), ssm=True, image=ALGORITHM_IMAGE)
    caplog.set_level(logging.INFO, logger="sagemaker-ssm-guard")
    # WHEN it is evaluated and recorded
    evaluation = next(sweep.evaluate_all(guard))
    record(evaluation.outcome)
    # THEN the decision and the log line say why SSM cannot reach it
    assert evaluation.outcome.decision is Kind.SSM_UNREACHABLE
    why = evaluation.outcome.unreachable["v"]
    assert "first-party algorithm" in why
    (line,) = [r for r in caplog.records if r.getMessage() == "endpoint evaluated"]
    assert line.unreachable == {"v": why}


def test_steady_state_costs_at_most_1_1_calls_per_endpoint(account, guard, paged) -> None:
    # GIVEN 400 endpoints, 5% with SSM on (compliant), each on its own config and model
    # (1,000 take 15 s in moto; the per-endpoint cost only falls with more endpoints)
    role = account.role("shared")
    account.iam.attach_role_policy(RoleName="shared", PolicyArn=account.policy_arn)
    for i in range(400):
        _endpoint(account, f"ep-{i:04d}", role, ssm=i % 20 == 0)
    # WHEN the sweep runs in steady state (nothing to do)
    with recording_calls() as calls:
        report = run_sweep(guard, SweepState.fresh()).as_dict()
    # THEN it made at most 1.1 AWS calls per endpoint, and changed nothing
    per_operation = calls.per_operation()
    # PagedSearch reads moto once and serves the pages itself: AWS would be called per page.
    per_operation["sagemaker.Search"] = len(paged.tokens)
    assert report["decisions"] == {"no-ssm": 380, "compliant": 20}
    assert per_operation["sagemaker.Search"] == 4
    assert per_operation["sagemaker.DescribeEndpoint"] == 0
    assert per_operation["sagemaker.ListTags"] == 0
    assert per_operation["iam.ListAttachedRolePolicies"] == 0
    assert per_operation["sagemaker.DescribeEndpointConfig"] == 400
    assert per_operation.total() / 400 <= 1.1, per_operation
    assert calls.mutating() == []


def test_each_config_and_model_is_described_once(account, guard, paged) -> None:
    role = account.role("r")
    account.iam.attach_role_policy(RoleName="r", PolicyArn=account.policy_arn)
    account.model("m", role)
    account.sagemaker.create_endpoint_config(
        EndpointConfigName="shared-config",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
    )
    for i in range(5):
        account.sagemaker.create_endpoint(
            EndpointName=f"twin-{i}", EndpointConfigName="shared-config"
        )
    with recording_calls() as calls:
        run_sweep(guard, SweepState.fresh())
    assert calls.count("DescribeEndpointConfig") == 1
    assert calls.count("DescribeModel") == 1


def test_a_run_short_of_time_hands_over_and_the_continuation_finishes(account, guard, paged):
    # GIVEN 150 endpoints (two pages) and an orphaned policy to clean up at the very end
    plain, orphan = account.role("plain"), account.role("orphan")
    account.iam.attach_role_policy(RoleName="orphan", PolicyArn=account.policy_arn)
    for i in range(150):
        _endpoint(account, f"p-{i:03d}", plain, ssm=False)
    handed: list[SweepState] = []
    # WHEN the first invocation runs with little time left
    first = run_sweep(
        guard, SweepState.fresh(), time_left_ms=lambda: 1_000, hand_over=handed.append
    )
    # THEN it stops after one page, hands over its state and has cleaned nothing yet
    assert first.finished is False
    assert first.state.page == 1
    assert account.policy_arn in account.attached(orphan)
    # WHEN the continuation runs from the handed-over payload (as Lambda would deliver it)
    payload = json.loads(json.dumps({sweep.SWEEP_MARKER: handed[0].to_dict()}))
    second = run_sweep(guard, sweep.state_from_event(payload))
    # THEN it finishes the run, counts every endpoint once and cleans up
    assert second.finished is True
    assert second.state.endpoints == 150
    assert paged.tokens == [None, "100"]
    assert account.attached(orphan) == []


def test_the_handler_hands_over_by_invoking_itself(account, guard, paged, monkeypatch):
    role = account.role("plain")
    for i in range(120):
        _endpoint(account, f"p-{i:03d}", role, ssm=False)
    invoked: list[dict[str, Any]] = []
    monkeypatch.setattr(
        sweep.lambda_api, "invoke_async", lambda _c, arn, payload: invoked.append(payload)
    )
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ssm-guard-sweep"
    result = on_sweep({"id": "run-1"}, LambdaContext(remaining_ms=1_000, arn=arn), guard)
    assert result["finished"] is False
    assert invoked[0][sweep.SWEEP_MARKER]["token"] == "100"
    assert invoked[0][sweep.SWEEP_MARKER]["run_id"] == "run-1"


def test_a_duplicate_delivery_of_one_scheduled_run_sweeps_once(
    account, guard, paged, monkeypatch
) -> None:
    idempotency_table(monkeypatch)
    _endpoint(account, "p", account.role("plain"), ssm=False)
    event = {"id": "scheduled-1", "detail-type": "Scheduled Event", "source": "aws.events"}
    on_sweep(event, None, guard)
    with recording_calls() as calls:
        again = on_sweep(event, None, guard)
    assert again["duplicate"] is True
    assert calls.count("Search") == 0


# -- cleanup ---------------------------------------------------------------------------------


def test_cleanup_detaches_only_the_roles_no_ssm_endpoint_uses(account, guard, paged) -> None:
    # GIVEN roles holding the policy: one for a live SSM endpoint, one whose endpoint was
    # deleted (its DELETED event lost), one whose endpoint switched SSM off
    used, deleted, switched = (account.role(n) for n in ("used", "deleted", "switched"))
    for name in ("used", "deleted", "switched"):
        account.iam.attach_role_policy(RoleName=name, PolicyArn=account.policy_arn)
    _endpoint(account, "live", used, ssm=True)
    _endpoint(account, "gone", deleted, ssm=True)
    account.sagemaker.delete_endpoint(EndpointName="gone")
    _endpoint(account, "off", switched, ssm=False)
    # WHEN the sweep runs
    report = run_sweep(guard, SweepState.fresh()).as_dict()
    # THEN the unused roles lost the policy, the used one kept it
    assert sorted(report["cleanup"]["detached"]) == ["deleted", "switched"]
    assert account.policy_arn in account.attached(used)
    assert account.attached(deleted) == []
    assert account.attached(switched) == []


def test_an_endpoint_search_has_not_indexed_yet_keeps_its_role(account, guard, paged) -> None:
    # GIVEN an SSM endpoint created a moment ago, not in Search's index yet
    fresh = account.role("fresh")
    account.iam.attach_role_policy(RoleName="fresh", PolicyArn=account.policy_arn)
    _endpoint(account, "brand-new", fresh, ssm=True)
    paged.hide.add("brand-new")
    # WHEN the sweep runs THEN ListEndpoints (recently modified) finds it: the policy stays
    report = run_sweep(guard, SweepState.fresh()).as_dict()
    assert report["cleanup"]["detached"] == []
    assert account.policy_arn in account.attached(fresh)


def test_an_update_in_flight_to_an_ssm_config_keeps_its_role(account, guard, paged) -> None:
    # GIVEN an endpoint updating from a plain config to one with SSM on, whose role holds the
    # policy (the update is not visible in Search; DescribeEndpoint shows the pending config)
    role = account.role("pending")
    account.iam.attach_role_policy(RoleName="pending", PolicyArn=account.policy_arn)
    _endpoint(account, "updating", role, ssm=False)
    account.sagemaker.create_endpoint_config(
        EndpointConfigName="updating-ssm",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": "updating-m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
    )
    set_status("updating", "Updating")
    real_describe = paged._real.describe_endpoint

    def describe_endpoint(**kwargs: Any) -> dict[str, Any]:
        described = real_describe(**kwargs)
        if kwargs["EndpointName"] == "updating":
            described["PendingDeploymentSummary"] = {"EndpointConfigName": "updating-ssm"}
        return described

    paged.describe_endpoint = describe_endpoint
    # WHEN the sweep runs THEN the role stays
    report = run_sweep(guard, SweepState.fresh()).as_dict()
    assert report["cleanup"]["detached"] == []
    assert account.policy_arn in account.attached(role)


def test_a_run_with_an_unreadable_endpoint_cleans_nothing(account, guard, paged) -> None:
    # GIVEN an orphaned policy, and an endpoint whose config cannot be read
    orphan = account.role("orphan")
    account.iam.attach_role_policy(RoleName="orphan", PolicyArn=account.policy_arn)
    _endpoint(account, "broken", account.role("b"), ssm=True)
    account.sagemaker.delete_endpoint_config(EndpointConfigName="broken-config")
    # WHEN the sweep runs THEN it reports the endpoint and, in doubt, detaches nothing
    report = run_sweep(guard, SweepState.fresh()).as_dict()
    assert report["problems"] == ["broken"]
    assert "skipped" in report["cleanup"]
    assert account.policy_arn in account.attached(orphan)


@pytest.mark.parametrize(
    "payload",
    [
        "not an object",
        {sweep.SWEEP_MARKER: "x"},
        {sweep.SWEEP_MARKER: {"run_id": "", "started_ms": 1, "page": 1}},
        {sweep.SWEEP_MARKER: {"run_id": "r", "started_ms": -1, "page": 1}},
        {sweep.SWEEP_MARKER: {"run_id": "r", "started_ms": 1, "page": 1, "token": 5}},
        {sweep.SWEEP_MARKER: {"run_id": "r", "started_ms": 1, "page": 1, "recheck": [1]}},
    ],
)
def test_a_malformed_hand_over_is_rejected_and_changes_nothing(guard, payload) -> None:
    with recording_calls() as calls:
        result = on_sweep(payload, None, guard)
    assert result["decision"] == "malformed-event"
    assert calls.calls == []


def test_a_role_attached_once_is_not_asked_about_again_in_the_run(account, guard, paged):
    # GIVEN ten SSM endpoints sharing one role that lacks the policy (their events were lost)
    role = account.role("shared")
    for i in range(10):
        _endpoint(account, f"ep-{i}", role, ssm=True)
    # WHEN the sweep runs
    with recording_calls() as calls:
        report = run_sweep(guard, SweepState.fresh()).as_dict()
    # THEN the policy is attached once and IAM is asked about the role once per attach only
    assert report["decisions"] == {"attached": 1, "compliant": 9}
    assert calls.count("AttachRolePolicy") == 1
    assert calls.count("ListAttachedRolePolicies") <= 2
