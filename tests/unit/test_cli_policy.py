"""`ssm-guard user-policy`: valid JSON, exactly the named endpoints, bad input refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.client import BaseClient

from ssm_guard.cli.main import main
from ssm_guard.cli.policy import PolicyInputError, Scope, compact_length, user_policy

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
SCOPE = Scope(account=ACCOUNT, region="eu-west-1", partition="aws")
PINNED = ["--account", ACCOUNT, "--region", "eu-west-1"]


@pytest.fixture
def aws_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["user-policy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in policy["Statement"] if s["Sid"] == sid]
    return found


def resources(policy: dict[str, Any], sid: str) -> set[str]:
    value = statement(policy, sid)["Resource"]
    return {value} if isinstance(value, str) else set(value)


def test_policy_is_valid_json_naming_exactly_the_endpoints(capsys, aws_calls) -> None:
    # WHEN a policy is asked for two endpoints, account and region given
    code, out, err = run(capsys, "fraud-dev", "churn-dev", *PINNED)
    # THEN stdout is one JSON document and nothing is asked of AWS
    assert code == 0
    assert err == ""
    assert aws_calls == []
    policy = json.loads(out)
    assert policy["Version"] == "2012-10-17"
    # AND sessions start into exactly those endpoints (and through the default document)
    start = statement(policy, "StartSessionsIntoTheseEndpoints")
    assert start["Action"] == "ssm:StartSession"
    assert resources(policy, "StartSessionsIntoTheseEndpoints") == {
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/fraud-dev",
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/churn-dev",
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:document/SSM-SessionManagerRunShell",
    }
    assert start["Condition"] == {"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}}
    # AND only the holder's own sessions can be ended, resumed or streamed
    own = {f"arn:aws:ssm:eu-west-1:{ACCOUNT}:session/${{aws:userid}}-*"}
    assert resources(policy, "UseOnlyOwnSessions") == own
    assert resources(policy, "OpenOwnSessionDataChannel") == own
    # AND only those endpoints' published targets can be read
    prefix = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/sagemaker-ssm-guard/targets"
    assert resources(policy, "ReadTargetsOfTheseEndpoints") == {
        f"{prefix}/fraud-dev",
        f"{prefix}/fraud-dev/*",
        f"{prefix}/churn-dev",
        f"{prefix}/churn-dev/*",
    }


def test_no_statement_allows_every_resource_or_a_wildcard_action() -> None:
    policy = user_policy(["ep"], SCOPE)
    for item in policy["Statement"]:
        values = item["Resource"] if isinstance(item["Resource"], list) else [item["Resource"]]
        actions = item["Action"] if isinstance(item["Action"], list) else [item["Action"]]
        assert "*" not in values
        assert all("*" not in action for action in actions)
        assert item["Effect"] == "Allow"


def test_endpoint_arns_use_the_lower_cased_name_aws_puts_in_arns() -> None:
    # GIVEN an endpoint created as MyEndpoint (its ARN says endpoint/myendpoint)
    policy = user_policy(["MyEndpoint", "myendpoint"], SCOPE)
    # THEN one ARN, lower-cased; the parameter names keep the case the guard publishes with
    endpoints = {
        r for r in resources(policy, "StartSessionsIntoTheseEndpoints") if ":endpoint/" in r
    }
    assert endpoints == {f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/myendpoint"}
    names = {r.rsplit("targets/", 1)[1] for r in resources(policy, "ReadTargetsOfTheseEndpoints")}
    assert names == {"MyEndpoint", "MyEndpoint/*", "myendpoint", "myendpoint/*"}


def test_partition_region_and_prefix_shape_every_arn(capsys) -> None:
    code, out, _ = run(
        capsys, "ep", "--account", ACCOUNT, "--region", "cn-north-1", "--prefix", "/team/targets/"
    )
    assert code == 0
    policy = json.loads(out)
    arns = [r for s in policy["Statement"] for r in resources(policy, s["Sid"])]
    assert all(arn.startswith("arn:aws-cn:") for arn in arns)
    assert all(":cn-north-1:" in arn for arn in arns)
    assert f"arn:aws-cn:ssm:cn-north-1:{ACCOUNT}:parameter/team/targets/ep" in arns


def test_account_and_partition_default_to_the_callers(capsys, account, aws_calls) -> None:
    # GIVEN credentials for an account (moto's) and a configured region
    code, out, _ = run(capsys, "ep")
    # THEN the account comes from STS and the region from the configuration
    assert code == 0
    assert aws_calls == ["GetCallerIdentity"]
    arns = resources(json.loads(out), "StartSessionsIntoTheseEndpoints")
    assert f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ep" in arns


@pytest.mark.parametrize(
    "name",
    ["bad_name", "../../etc/passwd", "ep/child", "-leading", "a" * 64, "ep name", "épée", ""],
)
def test_an_invalid_endpoint_name_is_refused_before_anything_else(capsys, aws_calls, name) -> None:
    # WHEN one of the names is not a SageMaker name (account not given: STS would be asked)
    code, out, err = run(capsys, "--", "good-ep", name)
    # THEN a clear error, exit 2, nothing on stdout and no AWS call
    assert code == 2
    assert out == ""
    assert "not a valid SageMaker name" in err
    assert aws_calls == []


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--account", "12345", "12-digit"),
        ("--account", "12345678901a", "12-digit"),
        ("--region", "moon-base", "not an AWS region"),
        ("--partition", "aws-mars", "partition"),
        ("--prefix", "no-leading-slash", "prefix"),
        ("--prefix", "/aws/reserved", "prefix"),
    ],
)
def test_bad_scope_is_refused(capsys, option, value, says) -> None:
    argv = {"--account": ACCOUNT, "--region": "eu-west-1"} | {option: value}
    flat = [item for pair in argv.items() for item in pair]
    code, out, err = run(capsys, "ep", *flat)
    assert code == 2
    assert out == ""
    assert says in err


def test_no_region_anywhere_is_a_clear_error(capsys, monkeypatch) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, out, err = run(capsys, "ep", "--account", ACCOUNT)
    assert code == 2
    assert out == ""
    assert "region" in err


def test_a_policy_too_long_for_a_managed_policy_warns_and_stays_valid(capsys) -> None:
    names = [f"endpoint-number-{i:03d}" for i in range(40)]
    code, out, err = run(capsys, *names, *PINNED)
    assert code == 0
    assert compact_length(json.loads(out)) > 6144
    assert "at most 6144" in err


def test_user_policy_needs_an_endpoint() -> None:
    with pytest.raises(PolicyInputError, match="at least one"):
        user_policy([], SCOPE)
