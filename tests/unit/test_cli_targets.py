"""`ssm-guard targets`, `connect` and `logs` against an in-process moto account."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import boto3
import pytest
from _target_streams import instance_id, ssm_endpoint, write_ssm_stream

from ssm_guard.cli import targets as cli_targets
from ssm_guard.cli.main import main
from ssm_guard.discovery import refresh_targets

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() sets the log level with setdefault; keep it inside each test.
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.delenv("TARGETS_PARAMETER_PREFIX", raising=False)


@pytest.fixture
def published(account: Any, guard: Any) -> dict[str, list[str]]:
    """Two endpoints with published targets: `dev-ep` (one instance, one container) and `pipe`
    (two instances of a two-container model)."""
    ssm_endpoint(account, "dev-ep")
    write_ssm_stream("dev-ep", "blue", instance_id(1), [None])
    ssm_endpoint(account, "pipe", containers=2, instances=2)
    for n in (2, 3):
        write_ssm_stream("pipe", "blue", instance_id(n), ["step-0", "step-1"])
    return {name: refresh_targets(guard, name).targets for name in ("dev-ep", "pipe")}


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The AWS CLI and the plugin are installed; record the commands run instead of running."""
    ran: list[list[str]] = []
    monkeypatch.setattr(cli_targets.shutil, "which", lambda name: f"/usr/local/bin/{name}")

    def run(command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli_targets.subprocess, "run", run)
    return ran


# --- targets ----------------------------------------------------------------------------------


def test_targets_of_one_endpoint_as_a_table(published, capsys) -> None:
    assert main(["targets", "pipe"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pipe: 4 targets, updated ")
    assert "variant" in out
    assert "container" in out
    for target in published["pipe"]:
        assert target in out


def test_targets_of_every_endpoint_as_json(published, capsys) -> None:
    # WHEN a script asks for every endpoint's targets
    assert main(["targets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # THEN it gets one stable object per endpoint, sorted by name
    assert [d["endpoint"] for d in data] == ["dev-ep", "pipe"]
    assert set(data[0]) == {"endpoint", "updated", "targets"}
    assert data[0]["targets"] == [
        {
            "variant": "blue",
            "instance": instance_id(1),
            "container": None,
            "target": f"sagemaker-endpoint:dev-ep_blue_{instance_id(1)}",
            "source": "log",
        }
    ]
    assert [t["target"] for t in data[1]["targets"]] == published["pipe"]


def test_endpoint_without_targets_says_why(account, capsys) -> None:
    assert main(["targets", "no-such-ep"]) == 1
    err = capsys.readouterr().err
    assert "no SSM targets are published for endpoint no-such-ep" in err
    assert "EnableSSMAccess" in err
    assert "not in service" in err


def test_a_bad_endpoint_name_is_a_usage_error(account, capsys) -> None:
    assert main(["targets", "../etc/passwd"]) == 2
    assert "not a valid SageMaker name" in capsys.readouterr().err


def test_an_empty_endpoint_name_is_refused_not_read_as_every_endpoint(published, capsys) -> None:
    """`ssm-guard targets "$EP"` with EP unset must not list every endpoint of the account."""
    assert main(["targets", ""]) == 2
    captured = capsys.readouterr()
    assert "not a valid SageMaker name" in captured.err
    assert "dev-ep" not in captured.out


def test_ssm_on_without_live_containers_yet(account, guard, capsys) -> None:
    ssm_endpoint(account, "fresh")
    refresh_targets(guard, "fresh")
    assert main(["targets", "fresh"]) == 0
    assert "no live container was found" in capsys.readouterr().out
    assert main(["connect", "fresh", "--print"]) == 1


# --- connect ----------------------------------------------------------------------------------


def test_connect_to_the_only_target(published, session) -> None:
    assert main(["connect", "dev-ep"]) == 0
    assert session == [
        [
            "/usr/local/bin/aws",
            "ssm",
            "start-session",
            "--target",
            f"sagemaker-endpoint:dev-ep_blue_{instance_id(1)}",
        ]
    ]


def test_connect_print_shows_the_command_without_running_it(published, session, capsys) -> None:
    args = ["connect", "pipe", "--instance", instance_id(3), "--container", "step-1", "--print"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == (
        f"aws ssm start-session --target sagemaker-endpoint:pipe_blue_{instance_id(3)}_step-1"
    )
    assert session == []


def test_several_targets_without_a_person_lists_them_and_fails(
    published, session, capsys, monkeypatch
) -> None:
    # GIVEN no terminal (a script, CI)
    monkeypatch.setattr(cli_targets, "is_interactive", lambda: False)
    # WHEN the options leave two targets
    code = main(["connect", "pipe", "--container", "step-0"])
    # THEN both are listed, nothing runs, and the exit code says so
    err = capsys.readouterr().err
    assert code == 2
    assert "2 targets of pipe match" in err
    assert f"sagemaker-endpoint:pipe_blue_{instance_id(2)}_step-0" in err
    assert f"sagemaker-endpoint:pipe_blue_{instance_id(3)}_step-0" in err
    assert session == []


def test_several_targets_with_a_person_asks(published, session, capsys, monkeypatch) -> None:
    # GIVEN a person at the terminal who first mistypes, then picks the second choice
    monkeypatch.setattr(cli_targets, "is_interactive", lambda: True)
    answers = iter(["nine", "2"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    # WHEN connecting with the options leaving two targets
    assert main(["connect", "pipe", "--container", "step-0"]) == 0
    # THEN the chosen one is connected to
    assert session[0][-1] == f"sagemaker-endpoint:pipe_blue_{instance_id(3)}_step-0"
    assert "please answer a number" in capsys.readouterr().err


def test_no_target_matches(published, session, capsys) -> None:
    assert main(["connect", "pipe", "--variant", "green"]) == 2
    err = capsys.readouterr().err
    assert "no target of pipe matches --variant green" in err
    assert published["pipe"][0] in err
    assert session == []


def test_missing_aws_cli_says_what_to_install(published, capsys, monkeypatch) -> None:
    monkeypatch.setattr(cli_targets.shutil, "which", lambda name: None)
    assert main(["connect", "dev-ep"]) == 1
    err = capsys.readouterr().err
    assert "AWS CLI (`aws`) is not installed" in err
    assert cli_targets.AWS_CLI_INSTALL in err


def test_missing_session_manager_plugin_says_what_to_install(
    published, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(
        cli_targets.shutil, "which", lambda name: "/usr/bin/aws" if name == "aws" else None
    )
    assert main(["connect", "dev-ep"]) == 1
    err = capsys.readouterr().err
    assert "Session Manager plugin (`session-manager-plugin`)" in err
    assert cli_targets.PLUGIN_INSTALL in err


def test_a_failed_session_points_at_the_usual_cause(published, capsys, monkeypatch) -> None:
    monkeypatch.setattr(cli_targets.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(
        cli_targets.subprocess,
        "run",
        lambda command, check: subprocess.CompletedProcess(command, 254),
    )
    assert main(["connect", "dev-ep"]) == 254
    assert "TargetNotConnected" in capsys.readouterr().err


# --- logs -------------------------------------------------------------------------------------


def test_logs_show_the_agent_lines_per_container(account, capsys) -> None:
    ssm_endpoint(account, "pipe", containers=2)
    write_ssm_stream("pipe", "blue", instance_id(4), ["step-0", "step-1"])
    assert main(["logs", "pipe"]) == 0
    out = capsys.readouterr().out
    assert f"blue/{instance_id(4)}/ssm" in out
    assert "-- step-0" in out
    assert "-- step-1" in out
    assert "Starting Amazon SSM Agent" in out


def test_logs_of_a_variant_without_ssm_streams(account, capsys) -> None:
    ssm_endpoint(account, "pipe")
    write_ssm_stream("pipe", "blue", instance_id(4), [None])
    assert main(["logs", "pipe", "--variant", "green"]) == 1
    err = capsys.readouterr().err
    assert "no SSM agent log streams" in err
    assert "TargetNotConnected" in err


def test_logs_of_an_endpoint_without_a_log_group(account, capsys) -> None:
    assert main(["logs", "nothing-here"]) == 1
    assert "has no log group" in capsys.readouterr().err


def test_an_unreadable_endpoint_does_not_hide_the_others(published, capsys) -> None:
    # GIVEN someone overwrote one endpoint's parameter by hand
    boto3.client("ssm").put_parameter(
        Name="/sagemaker-ssm-guard/targets/pipe", Value="edited", Type="String", Overwrite=True
    )
    # WHEN every endpoint is listed
    code = main(["targets", "--json"])
    # THEN the readable one is listed, the other reported, and the exit code says so
    captured = capsys.readouterr()
    assert [d["endpoint"] for d in json.loads(captured.out)] == ["dev-ep"]
    assert "the targets of pipe cannot be read" in captured.err
    assert code == 1
