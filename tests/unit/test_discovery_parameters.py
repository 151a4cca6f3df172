"""Parameter Store writes as AWS answers them: throttling, tags on creation only, tiers.

botocore's Stubber stands in for AWS where moto is more lenient than AWS (it never throttles,
never refuses a tier downgrade).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from _target_streams import published_value, ssm_endpoint, write_ssm_stream
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ssm_guard.aws import parameters as ps
from ssm_guard.discovery import TargetsAction, refresh_targets
from ssm_guard.targets import ParameterWrite

pytestmark = pytest.mark.unit

NAME = "/sagemaker-ssm-guard/targets/ep"
TAGS = {"managed-by": "sagemaker-ssm-guard", "sagemaker-endpoint": "ep"}


@pytest.fixture
def stubbed() -> Any:
    # One attempt: every error reaches our own retry, not botocore's.
    client = boto3.client(
        "ssm", config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ThrottlingException", "Rate exceeded"),
        ("TooManyUpdates", "There are concurrent updates for the resource"),
        ("InternalServerError", "Rate exceeded"),
    ],
)
def test_throttling_is_retried_with_backoff_and_jitter(
    stubbed: Any, sleeps: list[float], code: str, message: str
) -> None:
    # GIVEN Parameter Store throttles the write twice
    client, stubber = stubbed
    for _ in range(2):
        stubber.add_client_error("put_parameter", service_error_code=code, service_message=message)
    stubber.add_response("put_parameter", {"Version": 2, "Tier": "Standard"})
    # WHEN the value is overwritten
    tier = ps.put_value(
        client,
        ParameterWrite(NAME, "{}", "Standard"),
        exists=True,
        tags=TAGS,
        description="d",
        sleep=sleeps.append,
    )
    # THEN it is written on the third try, after two growing, jittered waits
    assert tier == "Standard"
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= ps.RETRY_BASE_SECONDS
    assert 0 <= sleeps[1] <= ps.RETRY_BASE_SECONDS * 2


def test_throttling_that_does_not_end_is_raised(stubbed: Any, sleeps: list[float]) -> None:
    client, stubber = stubbed
    for _ in range(ps.RETRY_ATTEMPTS):
        stubber.add_client_error("get_parameter", service_error_code="ThrottlingException")
    with pytest.raises(ClientError, match="ThrottlingException"):
        ps.get_value(client, NAME, sleep=sleeps.append)
    assert len(sleeps) == ps.RETRY_ATTEMPTS - 1


def test_access_denied_is_not_retried(stubbed: Any, sleeps: list[float]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("delete_parameters", service_error_code="AccessDeniedException")
    with pytest.raises(ClientError, match="AccessDenied"):
        ps.delete_names(client, [NAME], sleep=sleeps.append)
    assert sleeps == []


def test_tags_go_only_with_creation(stubbed: Any) -> None:
    # GIVEN a parameter we believed missing, created meanwhile by a concurrent refresh
    client, stubber = stubbed
    base = {"Name": NAME, "Value": "{}", "Type": "String", "Tier": "Standard", "Description": "d"}
    stubber.add_client_error(
        "put_parameter",
        service_error_code="ParameterAlreadyExists",
        expected_params={
            **base,
            "Tags": [
                {"Key": "managed-by", "Value": "sagemaker-ssm-guard"},
                {"Key": "sagemaker-endpoint", "Value": "ep"},
            ],
        },
    )
    # THEN it is overwritten, without tags (AWS rejects tags with Overwrite) and without labels
    stubber.add_response(
        "put_parameter", {"Version": 2, "Tier": "Standard"}, {**base, "Overwrite": True}
    )
    ps.put_value(
        client, ParameterWrite(NAME, "{}", "Standard"), exists=False, tags=TAGS, description="d"
    )


def test_an_advanced_parameter_stays_advanced(stubbed: Any) -> None:
    # GIVEN a parameter AWS holds in the advanced tier, and a value that fits the standard one
    client, stubber = stubbed
    base = {"Name": NAME, "Value": "{}", "Type": "String", "Description": "d", "Overwrite": True}
    stubber.add_client_error(
        "put_parameter",
        service_error_code="ValidationException",
        service_message=(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter "
            "from the advanced-parameter tier to the standard-parameter tier."
        ),
        expected_params={**base, "Tier": "Standard"},
    )
    stubber.add_response(
        "put_parameter", {"Version": 3, "Tier": "Advanced"}, {**base, "Tier": "Advanced"}
    )
    # WHEN it is written
    tier = ps.put_value(
        client, ParameterWrite(NAME, "{}", "Standard"), exists=True, tags=TAGS, description="d"
    )
    # THEN the write succeeds in the tier AWS keeps
    assert tier == "Advanced"


def test_get_tree_reads_every_page(stubbed: Any) -> None:
    client, stubber = stubbed
    page = {"Path": "/p", "Recursive": True, "MaxResults": 10}
    stubber.add_response(
        "get_parameters_by_path",
        {"Parameters": [{"Name": "/p/a", "Value": "1"}], "NextToken": "t"},
        page,
    )
    stubber.add_response(
        "get_parameters_by_path",
        {"Parameters": [{"Name": "/p/b", "Value": "2"}]},
        {**page, "NextToken": "t"},
    )
    assert ps.get_tree(client, "/p") == {"/p/a": "1", "/p/b": "2"}


class _ThrottledFirst:
    """A real client whose first calls of one operation answer `ThrottlingException`."""

    def __init__(self, client: Any, operation: str, failures: int) -> None:
        self._client, self._operation, self.failures = client, operation, failures

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def call(**kwargs: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                    name,
                )
            return attribute(**kwargs)

        return call


def test_refresh_survives_throttled_writes(
    account: Any, guard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Parameter Store throttles the first three writes
    ssm_endpoint(account, "busy")
    write_ssm_stream("busy", "blue", "i-0000000000000000a", [None])
    flaky = _ThrottledFirst(boto3.client("ssm"), "put_parameter", failures=3)
    guard.overrides["ssm"] = flaky
    waited: list[float] = []
    monkeypatch.setattr(ps.time, "sleep", waited.append)
    # WHEN the targets are refreshed
    outcome = refresh_targets(guard, "busy")
    # THEN they are published after three waits
    assert outcome.action is TargetsAction.PUBLISHED
    assert flaky.failures == 0
    assert len(waited) == 3
    assert published_value("busy")["targets"][0]["target"].endswith("_i-0000000000000000a")
