"""The one line `ssm-guard local up` prints per invocation names what the run was about."""

from __future__ import annotations

from typing import Any

import pytest

from ssm_guard.local.invoker import Invocation

pytestmark = pytest.mark.unit


def _run(event: Any, result: Any) -> Invocation:
    return Invocation(
        seq=1,
        request_id="r",
        function="EnforcerFunction",
        function_name="f",
        trigger={"type": "eventbridge"},
        event=event,
        ok=True,
        result=result,
        duration_ms=12.0,
    )


def test_a_state_change_names_its_endpoint() -> None:
    line = _run({"detail": {"EndpointName": "dev1"}}, {"decision": "attached"}).summary()
    assert line == "EnforcerFunction endpoint=dev1 decision=attached (12 ms, eventbridge)"


def test_a_cloudtrail_event_names_the_endpoint_the_handler_found() -> None:
    """AddTags names the endpoint only by ARN; the handler's answer has its name."""
    event = {"detail": {"requestParameters": {"resourceArn": "arn:...:endpoint/prod1"}}}
    line = _run(event, {"decision": "exception-granted", "endpoint_name": "prod1"}).summary()
    assert "endpoint=prod1 decision=exception-granted" in line


def test_a_config_state_change_names_its_config() -> None:
    event = {"detail": {"EndpointConfigName": "prod1-c"}}
    line = _run(event, {"decision": "compliant", "config_name": "prod1-c"}).summary()
    assert "config=prod1-c decision=compliant" in line
