"""audit, enable and disable judge endpoints with the deployed guard's settings."""

from __future__ import annotations

import argparse
import os

import pytest

from ssm_guard.cli import _deployed
from ssm_guard.cli.common import CliError

pytestmark = pytest.mark.unit


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set, then delete: monkeypatch then restores each variable however the test left it.
    for name in (*_deployed.DEPLOYED_SETTINGS, _deployed.STACK_VARIABLE):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_deployed_settings_are_used_and_the_shell_wins(
    clean_settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a stack deployed in monitor mode with its own production tags
    monkeypatch.setattr(
        _deployed,
        "deployed_settings",
        lambda stack: {"GUARDRAIL_MODE": "monitor", "PRODUCTION_TAG_KEYS": "tier"},
    )
    monkeypatch.setenv("PRODUCTION_TAG_KEYS", "stage")
    # WHEN the command reads them
    source = _deployed.use_deployed_settings(argparse.Namespace(stack="my-guard"))
    # THEN the deployed mode applies, a variable set in the shell wins, and stderr says so
    assert os.environ["GUARDRAIL_MODE"] == "monitor"
    assert os.environ["PRODUCTION_TAG_KEYS"] == "stage"
    assert source == "stack my-guard"
    assert "settings from stack my-guard" in capsys.readouterr().err


def test_a_named_stack_that_cannot_be_read_is_a_clear_error(clean_settings, account) -> None:
    with pytest.raises(CliError, match="cannot read the settings of the guard's stack 'nope'"):
        _deployed.use_deployed_settings(argparse.Namespace(stack="nope"))
    assert "GUARDRAIL_MODE" not in os.environ


def test_no_default_stack_means_defaults_said_plainly(
    clean_settings, account, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _deployed.use_deployed_settings(argparse.Namespace(stack=None))
    assert source.startswith("defaults")
    assert "pass --stack NAME" in capsys.readouterr().err
