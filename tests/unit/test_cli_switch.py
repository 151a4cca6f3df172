"""`ssm-guard enable` / `ssm-guard disable`: dry run by default, --yes applies, production needs
an exception."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from ssm_guard.cli.main import main
from ssm_guard.enforce import Guard

pytestmark = pytest.mark.unit

TAG = "ssm-guard:exception-until"


@pytest.fixture
def cli_guard(guard, updatable, monkeypatch):
    """The CLI's Guard.from_env gives the test's guard (moto + UpdateEndpoint)."""

    def from_env(cls, *, dry_run: bool = False) -> Guard:
        return dataclasses.replace(guard, dry_run=dry_run)

    monkeypatch.setattr(Guard, "from_env", classmethod(from_env))
    return guard


def _endpoint(account, name="dev-ep", tags=None, ssm=False):
    role = account.role(f"{name}-role")
    account.model(f"{name}-m", role)
    account.endpoint(
        name,
        [
            {"VariantName": "a", "ModelName": f"{name}-m", "EnableSSMAccess": ssm},
            {"VariantName": "b", "ModelName": f"{name}-m", "InitialInstanceCount": 2},
        ],
        tags=tags if tags is not None else {"environment": "dev"},
    )


def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_enable_is_a_dry_run_by_default_showing_the_change(
    account, cli_guard, updatable, capsys
) -> None:
    _endpoint(account)
    code = main(["enable", "dev-ep"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Old config:  dev-ep-config" in out
    assert "New config:  dev-ep-config-ssm-on-" in out
    assert "Dry run: nothing changed" in out
    assert updatable.updates == []
    assert [c for c in updatable.created if "ssm-on" in c] == []


def test_enable_yes_updates_through_a_faithful_copy(account, cli_guard, updatable, capsys) -> None:
    _endpoint(account)
    code = main(["enable", "dev-ep", "--yes", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["result"] == "updating"
    [update] = updatable.updates
    assert update["RetainAllVariantProperties"] is True
    assert update["EndpointConfigName"] == result["config"]
    config = account.sagemaker.describe_endpoint_config(EndpointConfigName=result["config"])
    assert [v.get("EnableSSMAccess") for v in config["ProductionVariants"]] == [True, True]
    assert config["ProductionVariants"][1]["InitialInstanceCount"] == 2


def test_variant_limits_the_switch(account, cli_guard, updatable, capsys) -> None:
    _endpoint(account, ssm=True)
    main(["enable", "dev-ep", "--variant", "b", "--yes", "--json"])
    result = json.loads(capsys.readouterr().out)
    changes = {v["variant"]: (v["before"], v["after"]) for v in result["variants"]}
    assert changes == {"a": ("on", "on"), "b": ("off", "on")}


def test_disable_on_an_endpoint_without_ssm_changes_nothing(
    account, cli_guard, updatable, capsys
) -> None:
    _endpoint(account)
    assert main(["disable", "dev-ep", "--yes"]) == 0
    assert "already off" in capsys.readouterr().out
    assert updatable.updates == []


def test_disable_turns_ssm_off(account, cli_guard, updatable, capsys) -> None:
    _endpoint(account, ssm=True)
    assert main(["disable", "dev-ep", "--yes"]) == 0
    [update] = updatable.updates
    assert "-ssm-off-" in update["EndpointConfigName"]


def test_enable_refuses_production_without_an_exception(
    account, cli_guard, updatable, capsys
) -> None:
    _endpoint(account, name="prod-ep", tags={"environment": "production"})
    code = main(["enable", "prod-ep", "--yes"])
    err = capsys.readouterr().err
    assert code == 2
    assert "tagged production" in err
    assert "--exception-until" in err
    assert updatable.updates == []


@pytest.mark.parametrize("until", ["2026-12-03", "soon", "far"])
def test_enable_refuses_an_exception_that_is_malformed_or_too_far(
    account, cli_guard, updatable, capsys, until
) -> None:
    _endpoint(account, name="prod-ep", tags={"environment": "production"})
    until = _in(30) if until == "far" else until
    code = main(["enable", "prod-ep", "--exception-until", until, "--yes"])
    assert code == 2
    assert "--exception-until refused" in capsys.readouterr().err
    assert updatable.updates == []
    tags = account.sagemaker.list_tags(
        ResourceArn=account.sagemaker.describe_endpoint(EndpointName="prod-ep")["EndpointArn"]
    )["Tags"]
    assert TAG not in {t["Key"] for t in tags}


def test_enable_production_with_an_exception_tags_it_first(
    account, cli_guard, updatable, capsys
) -> None:
    _endpoint(account, name="prod-ep", tags={"environment": "production"})
    until = _in(3)
    code = main(["enable", "prod-ep", "--exception-until", until, "--yes"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{TAG}={until}" in out
    arn = account.sagemaker.describe_endpoint(EndpointName="prod-ep")["EndpointArn"]
    tags = {t["Key"]: t["Value"] for t in account.sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert tags[TAG] == until
    assert len(updatable.updates) == 1


def test_extending_an_exception_where_ssm_is_on_only_tags_and_says_so(
    account, cli_guard, updatable, capsys
) -> None:
    """The on-call's usual case: SSM is on under an exception, they need longer. Nothing but the
    tag changes, and the output must not speak of a new config or an update in progress."""
    _endpoint(account, name="prod-ep", tags={"environment": "production"}, ssm=True)
    main(["enable", "prod-ep", "--variant", "a", "--exception-until", _in(1)])
    dry = capsys.readouterr().out
    until = _in(3)
    code = main(["enable", "prod-ep", "--variant", "a", "--exception-until", until, "--yes"])
    out = capsys.readouterr().out
    assert code == 0
    assert updatable.updates == []
    for text in (dry, out):
        assert "New config:" not in text
        assert "SSM access is already on" in text
    assert "updating" not in out
    assert "--wait" not in out
    assert f"{TAG}={until}" in out
    arn = account.sagemaker.describe_endpoint(EndpointName="prod-ep")["EndpointArn"]
    tags = {t["Key"]: t["Value"] for t in account.sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert tags[TAG] == until
    main(["enable", "prod-ep", "--variant", "a", "--exception-until", until, "--yes", "--json"])
    assert json.loads(capsys.readouterr().out)["result"] == "tagged"


def test_bad_input_gets_a_clear_error_and_changes_nothing(
    account, cli_guard, updatable, capsys
) -> None:
    _endpoint(account)
    assert main(["enable", "not a name"]) == 2
    assert "not a valid SageMaker name" in capsys.readouterr().err
    assert main(["enable", "missing-ep", "--yes"]) == 1
    assert "no endpoint named missing-ep" in capsys.readouterr().err
    assert main(["enable", "dev-ep", "--variant", "zzz", "--yes"]) == 2
    assert "no variant named zzz" in capsys.readouterr().err
    assert updatable.updates == []


def test_a_busy_endpoint_is_reported_and_its_copy_cleaned_up(
    account, cli_guard, updatable, capsys
) -> None:
    _endpoint(account)
    updatable.busy = True
    assert main(["enable", "dev-ep", "--yes"]) == 1
    assert "busy" in capsys.readouterr().err
    assert [c for c in updatable.configs() if "ssm-on" in c] == []


def test_a_refusal_mentioning_ssm_points_at_the_allowlist(
    account, cli_guard, updatable, capsys
) -> None:
    _endpoint(account)
    updatable.fail_with = ("ValidationException", "EnableSSMAccess is not supported for account")
    assert main(["enable", "dev-ep", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "allow-listed by AWS Support" in err
    assert [c for c in updatable.configs() if "ssm-on" in c] == []
