"""Fixtures shared by every test folder. Add yours below; keep each one documented."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ssm_guard.local.api import LocalAws

# -- the embedded local AWS (ssm_guard.local) ----------------------------------------------

# Endpoints stay Creating/Updating/Deleting this long in tests: long enough to observe each
# state over HTTP, short enough to keep the suite quick.
LOCAL_AWS_TEST_DELAY = float(os.environ.get("SSM_GUARD_LOCAL_DELAY_SECONDS", "0.2"))


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """The embedded local AWS with template.yaml deployed, one per test session (per xdist
    worker). It runs in a child process, so an in-process `mock_aws` cannot reset it.

    Use unique endpoint names per test; wait with `local_aws.wait_for_invocations(
    function="EnforcerFunction", predicate=lambda i: i.endpoint_name == name, since=mark)`.
    """
    from ssm_guard.local.api import LocalAws

    with LocalAws(delay=LOCAL_AWS_TEST_DELAY, isolated=True) as aws:
        aws.deploy_stack()
        yield aws


@pytest.fixture(scope="session")
def local_client(local_aws: LocalAws) -> Callable[[str], Any]:
    """`local_client("sagemaker")`: a boto3 client for `local_aws` with retries capped, so an
    operation the emulator lacks (HTTP 500) fails at once instead of after backoff."""

    def make(service: str) -> Any:
        return local_aws.client(service, max_attempts=2)

    return make


@pytest.fixture
def local_aws_env(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """Point boto3's defaults (AWS_ENDPOINT_URL, region, dummy credentials) at `local_aws` for
    code under test that builds its own clients."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in local_aws.env().items():
        monkeypatch.setenv(name, value)
    return local_aws
