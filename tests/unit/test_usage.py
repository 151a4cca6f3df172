"""Which roles and configs the account's endpoints use (`usage.py`), read with the fewest calls:
Search pages, each config and model once, live reads only where Search cannot tell, and no
further than what is looked for. Also the calls each event path makes now that the idempotency
record is claimed after the reads, and the sweep's reads made several at a time."""

from __future__ import annotations

from typing import Any

import pytest
from _reliability import idempotency_table, recording_calls, set_status, state_change_event

from ssm_guard import usage
from ssm_guard.aws import sagemaker as sm_api
from ssm_guard.decisions import Kind
from ssm_guard.endpoint import ModelInfo
from ssm_guard.enforce import evaluate_endpoint
from ssm_guard.handlers import on_endpoint_state_change
from ssm_guard.usage import Wanted

pytestmark = pytest.mark.unit
PAGE = 2


class SmallPages:
    """moto's Search answers everything at once; this pages it two records at a time (AWS: 100)
    and can hide endpoints, as Search's index lags behind the API."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.hide: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def search(self, **kwargs: Any) -> dict[str, Any]:
        records = [
            r
            for r in self._real.search(Resource=kwargs["Resource"])["Results"]
            if r["Endpoint"]["EndpointName"] not in self.hide
        ]
        start = int(kwargs.get("NextToken") or 0)
        page: dict[str, Any] = {"Results": records[start : start + PAGE]}
        if start + PAGE < len(records):
            page["NextToken"] = str(start + PAGE)
        return page


@pytest.fixture
def paged(account, guard) -> SmallPages:
    client = SmallPages(account.sagemaker)
    account.sagemaker = client
    guard.sagemaker = client
    return client


def _endpoint(account, name: str, role: str, *, ssm: bool, tags=None) -> None:
    account.model(f"{name}-m", role)
    account.endpoint(
        name, [{"VariantName": "v", "ModelName": f"{name}-m", "EnableSSMAccess": ssm}], tags=tags
    )


def _ssm_config(account, name: str, model: str) -> None:
    account.sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
    )


# -- the reading stops as soon as what it looks for is in use --------------------------------


def test_a_shared_role_is_found_on_the_first_page_and_the_reading_stops(
    account, guard, paged
) -> None:
    # GIVEN a role two SSM endpoints use, first in Search's order, and six more endpoints
    shared = account.role("shared")
    _endpoint(account, "a-ssm", shared, ssm=True)
    _endpoint(account, "b-ssm", shared, ssm=True)
    for i in range(6):
        _endpoint(account, f"plain-{i}", account.role(f"r{i}"), ssm=False)
    # WHEN the guard asks whether an endpoint other than a-ssm uses the role
    with recording_calls() as calls:
        found = usage.in_use(guard, Wanted(roles=frozenset({"shared"})), exclude="a-ssm")
    # THEN b-ssm, on Search's first page, answers it: one page, its config and model, no more
    assert "shared" in found.roles
    assert calls.operations("sagemaker") == ["Search", "DescribeEndpointConfig", "DescribeModel"]


def test_a_role_no_other_endpoint_uses_costs_every_page_and_each_config_once(
    account, guard, paged
) -> None:
    # GIVEN a role only the reverted endpoint uses, and six endpoints sharing two configs
    alone = account.role("alone")
    _endpoint(account, "reverted", alone, ssm=True)
    _endpoint(account, "one", account.role("other"), ssm=True)
    account.endpoint("two", [{"VariantName": "v", "ModelName": "one-m", "EnableSSMAccess": True}])
    for name in ("three", "four", "five"):
        account.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="two-config")
    # WHEN the guard asks
    with recording_calls() as calls:
        found = usage.in_use(guard, Wanted(roles=frozenset({"alone"})), exclude="reverted")
    # THEN no other endpoint uses it; Search was read to the end, each config and model once,
    # and the endpoints changed in the last minutes (all of them, here) were read live
    assert "alone" not in found.roles
    assert calls.count("Search") == 3
    assert calls.count("DescribeEndpointConfig") == 2
    assert calls.count("DescribeModel") == 1
    assert calls.count("ListEndpoints") == 1
    assert calls.count("DescribeEndpoint") == 5


def test_a_config_is_looked_for_without_reading_any_config(account, guard, paged) -> None:
    _endpoint(account, "a", account.role("a"), ssm=True)
    _endpoint(account, "b", account.role("b"), ssm=False)
    with recording_calls() as calls:
        found = usage.in_use(guard, Wanted(configs=frozenset({"a-config"})))
    assert found.configs["a-config"] == {"a"}
    assert calls.operations("sagemaker") == ["Search"]


# -- where Search cannot tell, the endpoint is read live --------------------------------------


def test_a_role_only_a_pending_update_brings_is_in_use(account, guard, paged) -> None:
    # GIVEN an endpoint updating from a plain config to one with SSM on (Search shows the
    # plain config; DescribeEndpoint shows the pending one)
    role = account.role("pending")
    _endpoint(account, "updating", role, ssm=False)
    _ssm_config(account, "updating-ssm", "updating-m")
    set_status("updating", "Updating")
    real_describe = paged._real.describe_endpoint

    def describe_endpoint(**kwargs: Any) -> dict[str, Any]:
        described = real_describe(**kwargs)
        described["PendingDeploymentSummary"] = {"EndpointConfigName": "updating-ssm"}
        return described

    paged.describe_endpoint = describe_endpoint
    # WHEN the guard asks THEN the role is in use, and so are both configs
    found = usage.in_use(guard, Wanted(roles=frozenset({"pending"})))
    assert "pending" in found.roles
    assert set(found.configs) == {"updating-config", "updating-ssm"}


def test_an_endpoint_search_has_not_indexed_yet_keeps_its_role(account, guard, paged) -> None:
    _endpoint(account, "brand-new", account.role("fresh"), ssm=True)
    paged.hide.add("brand-new")
    found = usage.in_use(guard, Wanted(roles=frozenset({"fresh"})))
    assert "fresh" in found.roles


def test_an_endpoint_whose_config_was_deleted_under_it_keeps_the_policy(
    account, guard, paged
) -> None:
    from ssm_guard.guardrail import release_roles

    # GIVEN a reverted endpoint's role holding the policy, and another endpoint still running on
    # a config someone deleted (AWS allows it): which roles it uses cannot be read
    role = account.role("maybe-shared")
    account.iam.attach_role_policy(RoleName="maybe-shared", PolicyArn=account.policy_arn)
    _endpoint(account, "reverted", role, ssm=True)
    _endpoint(account, "orphaned", account.role("other"), ssm=True)
    account.sagemaker.delete_endpoint_config(EndpointConfigName="orphaned-config")
    known = sm_api.read_endpoint(account.sagemaker, "reverted")
    # WHEN the revert releases its roles THEN, in doubt, the policy stays
    assert release_roles(guard, known, [role]) == []
    assert account.policy_arn in account.attached(role)


def test_the_excluded_endpoint_keeps_nothing_in_use(account, guard, paged) -> None:
    _endpoint(account, "only", account.role("only"), ssm=True)
    found = usage.in_use(guard, Wanted(roles=frozenset({"only"})), exclude="only")
    assert found.roles == set()
    assert found.configs == {}


# -- a revert, end to end in process -----------------------------------------------------------


def test_a_revert_reads_tags_and_config_once_and_keeps_a_shared_role(
    account, guard, updatable, alert_inbox
) -> None:
    # GIVEN a production endpoint with SSM on whose role holds the policy and is shared with a
    # dev SSM endpoint
    shared = account.role("shared")
    account.iam.attach_role_policy(RoleName="shared", PolicyArn=account.policy_arn)
    _endpoint(account, "dev", shared, ssm=True)
    account.endpoint(
        "prod",
        [{"VariantName": "v", "ModelName": "dev-m", "EnableSSMAccess": True}],
        tags={"environment": "prod"},
    )
    # WHEN the production endpoint is evaluated
    with recording_calls() as calls:
        outcome = evaluate_endpoint(guard, "prod")
    # THEN it is reverted; the tags of the endpoint and of its config are each read once, the
    # config once (the copy is created without looking first), and one Search page showed
    # that the role is still in use: the policy stays
    assert outcome.decision is Kind.REVERTED
    assert outcome.details["roles_detached"] == []
    assert account.policy_arn in account.attached(shared)
    reads = ["DescribeEndpoint", "DescribeEndpointConfig", "ListTags", "DescribeModel"]
    assert calls.operations("sagemaker")[:6] == [*reads, "ListTags", "CreateEndpointConfig"]
    assert calls.count("ListTags") == 2
    assert calls.count("DescribeEndpoint") == 1
    assert calls.count("Search") == 1


# -- the enforcer claims its work only when the decision changes something ---------------------


def test_an_endpoint_without_ssm_costs_its_two_reads_and_no_record(
    account, guard, monkeypatch
) -> None:
    # GIVEN the idempotency table and an endpoint without SSM access
    idempotency_table(monkeypatch)
    _endpoint(account, "plain", account.role("plain"), ssm=False)
    event = state_change_event("plain")
    # WHEN its event arrives twice
    with recording_calls() as calls:
        results = [on_endpoint_state_change(event, guard) for _ in range(2)]
    # THEN each copy reads the endpoint and its config, decides no-ssm, and writes nothing
    assert [r["decision"] for r in results] == ["no-ssm", "no-ssm"]
    assert calls.operations() == ["DescribeEndpoint", "DescribeEndpointConfig"] * 2


def test_a_busy_endpoints_retry_is_claimed_so_copies_schedule_it_once(
    account, guard, monkeypatch
) -> None:
    # GIVEN the idempotency table and a dev SSM endpoint that is Updating
    idempotency_table(monkeypatch)
    _endpoint(account, "busy", account.role("busy"), ssm=True)
    set_status("busy", "Updating")
    event = state_change_event("busy")
    # WHEN two copies of its event arrive
    with recording_calls() as calls:
        first, second = (on_endpoint_state_change(event, guard) for _ in range(2))
    # THEN the first decides not-in-service under the claim; the second gets its answer
    assert first["decision"] == second["decision"] == "not-in-service"
    assert not first.get("duplicate")
    assert second["duplicate"] is True
    assert calls.count("PutItem") == 2  # the claim, and the second copy's refused claim


# -- the sweep reads a page's configs and models several at a time ----------------------------


def test_configs_and_models_are_read_once_each_and_a_failed_read_is_left_out(
    account, guard
) -> None:
    # GIVEN four configs (two with SSM on, sharing a model) and a name that does not exist
    role = account.role("r")
    for name in ("a", "b"):
        _endpoint(account, name, role, ssm=False)
    account.model("shared-m", role)
    for name in ("c", "d"):
        _ssm_config(account, f"{name}-config", "shared-m")
    configs: dict[str, dict[str, Any]] = {}
    models: dict[str, ModelInfo] = {}
    names = ["a-config", "b-config", "c-config", "d-config", "missing", "a-config"]
    # WHEN they are read, four at a time
    with recording_calls() as calls:
        sm_api.read_configs_and_models(account.sagemaker, names, configs, models, workers=4)
    # THEN each config and the shared model were read once; the missing one is left out
    assert sorted(configs) == ["a-config", "b-config", "c-config", "d-config"]
    assert sorted(models) == ["shared-m"]
    assert calls.count("DescribeEndpointConfig") == 5
    assert calls.count("DescribeModel") == 1


def test_endpoints_on_the_reverted_endpoints_config_answer_without_a_read(
    account, guard, paged
) -> None:
    # GIVEN two pages: the reverted endpoint and a plain one; another plain one and a twin
    # running on the reverted endpoint's SSM config
    role = account.role("shared")
    _endpoint(account, "reverted", role, ssm=True)
    _endpoint(account, "plain", account.role("plain"), ssm=False)
    _endpoint(account, "other-plain", account.role("other"), ssm=False)
    account.sagemaker.create_endpoint(EndpointName="twin", EndpointConfigName="reverted-config")
    known = sm_api.read_endpoint(account.sagemaker, "reverted")
    # WHEN the guard asks, knowing the reverted endpoint's config and models already
    with recording_calls() as calls:
        found = usage.in_use(
            guard, Wanted(roles=frozenset({"shared"})), exclude="reverted", known=known
        )
    # THEN the twin answers on the second page, read first there as it costs nothing: only
    # the first page's plain config was read
    assert "shared" in found.roles
    assert calls.operations("sagemaker") == ["Search", "DescribeEndpointConfig", "Search"]


def test_the_guards_copies_are_listed_by_name_not_among_every_config(account, guard) -> None:
    from datetime import UTC, datetime, timedelta

    from ssm_guard.guardrail import cleanup_unused_configs

    # GIVEN 120 configs of the account's own (two pages of ListEndpointConfigs) and none of ours
    account.model("m", account.role("r"))
    for i in range(120):
        account.sagemaker.create_endpoint_config(
            EndpointConfigName=f"team-config-{i}",
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
    # WHEN the guard looks for unused copies of its own
    with recording_calls() as calls:
        deleted = cleanup_unused_configs(guard, now=datetime.now(UTC) + timedelta(hours=2))
    # THEN one filtered listing answers it
    assert deleted == []
    assert calls.operations() == ["ListEndpointConfigs"]
