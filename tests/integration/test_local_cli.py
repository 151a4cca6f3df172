"""`ssm-guard local up | invoke | send`, against the session's local AWS or their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssm_guard.cli.main import main
from ssm_guard.local.api import LocalAws

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IN_SERVICE = ROOT / "events" / "endpoint-in-service-minimal.json"


@pytest.fixture
def pointed_at_local_aws(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)
    return local_aws


def test_invoke_runs_a_function_with_sam_env_vars(
    pointed_at_local_aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an env-vars file in SAM's format
    env_file = tmp_path / "env.json"
    env_file.write_text(
        json.dumps({"EnforcerFunction": {"GUARDRAIL_MODE": "monitor", "NOT_DECLARED": "x"}}),
        encoding="utf-8",
    )

    # WHEN the enforcer is invoked with a sample event
    code = main(
        ["local", "invoke", "EnforcerFunction", "-e", str(IN_SERVICE), "--env-vars", str(env_file)]
    )

    # THEN its JSON answer is on stdout and the ignored variable is reported
    out, err = capsys.readouterr()
    assert code == 0
    assert "decision" in json.loads(out)
    assert "ignored: NOT_DECLARED" in err
    [invocation] = pointed_at_local_aws.invocations[-1:]
    assert invocation.trigger["type"] == "local-invoke"


def test_invoke_names_the_functions_when_one_is_unknown(
    pointed_at_local_aws: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["local", "invoke", "NoSuchFunction"])

    assert code == 1
    assert "EnforcerFunction" in capsys.readouterr().err


def test_send_runs_what_the_rules_trigger_and_nothing_else(
    pointed_at_local_aws: LocalAws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sample event and one that no rule listens to
    unheard = tmp_path / "unheard.json"
    unheard.write_text(
        json.dumps({"source": "local.test", "detail-type": "Nobody Listens", "detail": {}}),
        encoding="utf-8",
    )

    # WHEN both are sent
    code = main(["local", "send", str(IN_SERVICE), str(unheard)])

    # THEN the enforcer ran for the first; nothing ran for the second
    out = capsys.readouterr().out
    assert code == 0
    assert "EnforcerFunction endpoint=" in out
    assert f"{unheard}: no deployed rule matched; nothing ran" in out


def test_an_endpoint_url_that_is_not_the_emulator_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    code = main(["local", "send", str(IN_SERVICE)])

    assert code == 1
    assert "is not an ssm-guard local AWS" in capsys.readouterr().err


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ssm_guard.cli.main", *args]


def _clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["SSM_GUARD_LOCAL_DELAY_SECONDS"] = "0"
    return env


def test_invoke_without_an_endpoint_url_starts_an_ephemeral_local_aws(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no AWS_ENDPOINT_URL
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.chdir(ROOT)

    # WHEN a function is invoked
    code = main(["local", "invoke", "EnforcerFunction", "--event", str(IN_SERVICE), "--delay", "0"])

    # THEN a local AWS was started for the command, with the stack, and answered
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "starting an ephemeral local AWS" in err
    assert "decision" in json.loads(out)


def test_up_serves_until_interrupted_and_prints_invocations() -> None:
    # GIVEN `local up` on a free port
    up = subprocess.Popen(
        _cli("local", "up", "--port", "0", "--delay", "0", "--trail"),
        cwd=ROOT,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert up.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines.append(up.stdout.readline())
            if lines[-1].startswith("Invocations") or not lines[-1]:
                break
        url = next(line.split("=", 1)[1].strip() for line in lines if line.startswith("AWS_"))

        # WHEN an event is sent to it from this process
        sent = LocalAws.connect(url).send([json.loads(IN_SERVICE.read_text(encoding="utf-8"))])
        printed = up.stdout.readline()
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=30)

    # THEN it printed the endpoint URL, the invocation, and stopped cleanly on Ctrl-C
    assert any(line.startswith("Stack ") for line in lines)
    assert any(line.startswith("CloudTrail trail ") for line in lines)
    assert {invocation.function for invocation in sent} >= {"EnforcerFunction"}
    assert "endpoint=" in printed
    assert code == 0
