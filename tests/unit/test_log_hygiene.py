"""What the functions write to their logs: fixed messages and keys, never a whole event, a
credential or a session token; input that is not a valid name is refused before any use."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from _handler_runs import (
    SCENARIOS,
    FakeContext,
    endpoint_event,
    load_handler,
    record_calls,
    run_scenarios,
)

from ssm_guard import clients
from ssm_guard.observability import SERVICE, logger

pytestmark = pytest.mark.unit

ACCESS_KEY = "AKIALOGSCANMARKER7Q2Z"
SECRET_KEY = "LogScanSecretMarker/9f3c+Xk2QwErTyUiOpAsDfGhJkL"
SESSION_TOKEN = "LogScanSessionTokenMarker//FwoGZXIvYXdzEJr"
UNREAD_MARKER = "whole-event-marker-5d1e"
TAG_MARKER = "tag-value-marker-77ab"
SECRET_KEYS = re.compile(r"token|secret|password|credential|authorization", re.IGNORECASE)


@pytest.fixture
def marked_credentials(monkeypatch) -> None:
    """Credentials whose every part is recognisable in a log line."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    clients.client.cache_clear()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The guard's log lines exactly as Lambda would ship them (Powertools' JSON formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    target = logging.getLogger(SERVICE)
    target.addHandler(handler)
    level = target.level
    target.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


def mark(event: dict[str, Any]) -> None:
    """A field no code reads and a tag value: they reach a log only with the whole event."""
    detail = event.setdefault("detail", {})
    detail["UnreadByTheGuard"] = UNREAD_MARKER
    if isinstance(detail.get("Tags"), dict):
        detail["Tags"]["log-scan"] = TAG_MARKER


def records(text: str) -> list[dict[str, Any]]:
    parsed = []
    for line in text.splitlines():
        if line.strip():
            parsed.append(json.loads(line))  # one JSON object a line, no line broken open
    return parsed


def keys_of(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from keys_of(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from keys_of(inner)


@pytest.mark.parametrize("function_id", sorted(SCENARIOS))
def test_handler_logs_hold_no_event_credential_or_token(
    account, marked_credentials, log_lines, capfd, monkeypatch, function_id
) -> None:
    # GIVEN recognisable credentials, and events carrying recognisable fields
    calls = record_calls(monkeypatch)
    # WHEN the function's handler runs its scenarios
    run_scenarios(function_id, account, monkeypatch, calls, mark=mark)
    out, err = capfd.readouterr()
    written = log_lines.getvalue()
    # THEN the handler did log, in JSON lines...
    found = records(written)
    assert found, "the scenarios logged nothing: the test would prove nothing"
    # ...and neither its logs nor anything else it printed holds a marker
    for text in (written, out, err):
        for marker in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, UNREAD_MARKER, TAG_MARKER):
            assert marker not in text
    # ...nor a key that names a secret
    suspicious = sorted(
        {key for record in found for key in keys_of(record) if SECRET_KEYS.search(key)}
    )
    assert not suspicious, f"log keys that look like secrets: {suspicious}"


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "ep/child",
        "ep_with_underscore",
        'ep"}\n{"level": "INFO", "message": "forged',
        "a" * 64,
        "",
        None,
        {"nested": "object"},
    ],
)
def test_an_invalid_endpoint_name_is_refused_before_any_aws_call(
    account, log_lines, monkeypatch, name
) -> None:
    # GIVEN an event whose endpoint name is not a SageMaker name
    monkeypatch.setenv("SESSION_POLICY_ARN", account.policy_arn)
    calls = record_calls(monkeypatch)
    event = endpoint_event("dev-ep")
    event["detail"]["EndpointName"] = name
    # WHEN the enforcer gets it
    result = load_handler("EnforcerFunction")(event, FakeContext())
    # THEN it is refused, nothing is asked of AWS, and the log stays one JSON record a line
    assert result["decision"] == "malformed-event"
    assert calls == []
    for record in records(log_lines.getvalue()):
        assert record.get("message") != "forged"
