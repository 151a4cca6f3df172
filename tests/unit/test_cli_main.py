"""`ssm-guard` itself: the AWS settings a user gives, and one clear line when they are wrong."""

from __future__ import annotations

import io
from typing import Any

import pytest

from ssm_guard import clients
from ssm_guard.cli.main import main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.delenv("TARGETS_PARAMETER_PREFIX", raising=False)
    # No ~/.aws/config to fall back on: only what the environment says.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


def test_aws_region_alone_is_enough(account: Any, monkeypatch, capsys) -> None:
    """The README (and `--help`) say AWS_REGION; botocore itself reads only
    AWS_DEFAULT_REGION, so the CLI must carry one over to the other."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    clients.client.cache_clear()
    assert main(["targets", "--json"]) == 0
    assert "no AWS region" not in capsys.readouterr().err


def test_no_region_at_all_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    clients.client.cache_clear()
    assert main(["targets"]) == 2
    assert "no AWS region" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["notaurl", "127.0.0.1:5000", "http//localhost"])
def test_a_malformed_endpoint_url_is_one_line_not_a_traceback(monkeypatch, capsys, url) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    clients.client.cache_clear()
    assert main(["targets"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssm-guard: ")
    assert "AWS_ENDPOINT_URL" in err
    assert url in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_output_cut_short_by_a_closed_pipe_is_not_a_traceback(monkeypatch, capsys) -> None:
    """`ssm-guard audit | head -3`: the reader going away is no error of ours."""
    from ssm_guard.cli import main as cli_main
    from ssm_guard.cli import targets as cli_targets

    def closed_pipe(_args: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    class Stdout(io.StringIO):
        def fileno(self) -> int:
            return 99

    monkeypatch.setattr(cli_targets, "run_targets", closed_pipe)
    monkeypatch.setattr(cli_main.sys, "stdout", Stdout())
    redirected: list[int] = []
    monkeypatch.setattr(cli_main.os, "dup2", lambda fd, fd2: redirected.append(fd2))
    assert main(["targets"]) == 141  # 128 + SIGPIPE, what a shell reports for it
    assert "Traceback" not in capsys.readouterr().err
    assert redirected == [99], "stdout goes to /dev/null: the final flush stays quiet"
