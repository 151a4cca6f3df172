"""Running the template's Lambda handlers in-process against moto, as Lambda would call them.

Shared by the permission test (which operations a run makes) and the log hygiene test (what a
run writes to its logs). Add a function's scenarios to SCENARIOS to cover it in both.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _code_paths import Operation
from _iam_template import functions
from botocore.client import BaseClient

ROOT = Path(__file__).resolve().parents[2]


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[Operation]:
    """Every AWS operation any boto3 client makes during the test."""
    calls: list[Operation] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


class FakeContext:
    function_name = "ssm-guard-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ssm-guard-test"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/ssm-guard-test"
    log_stream_name = "2026/12/03/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler(function_id: str) -> Callable[[dict[str, Any], Any], Any]:
    code = functions()[function_id]
    spec = importlib.util.spec_from_file_location(f"handler_{function_id}", code.app_file)
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], Any] = getattr(module, code.handler)
    return handler


def endpoint_event(name: str, status: str = "IN_SERVICE", **detail: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "endpoint-in-service.json").read_text())
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name.lower()}"
    event["resources"] = [arn]
    event["detail"].update(
        EndpointName=name,
        EndpointArn=arn,
        EndpointConfigName=f"{name}-config",
        EndpointStatus=status,
        **detail,
    )
    return event


def enforcer_scenarios(account) -> list[dict[str, Any]]:
    """A dev endpoint with SSM (attach), one without, a vanished one, a malformed event."""
    role = account.role("dev-role")
    account.model("dev-model", role)
    account.endpoint(
        "dev-ep",
        [{"VariantName": "v", "ModelName": "dev-model", "EnableSSMAccess": True}],
        tags={"environment": "dev"},
    )
    account.model("plain-model", role)
    account.endpoint("plain-ep", [{"VariantName": "v", "ModelName": "plain-model"}])
    malformed = endpoint_event("dev-ep")
    malformed["detail"]["EndpointName"] = "../../not-a-name"
    return [
        endpoint_event("dev-ep"),
        endpoint_event("plain-ep"),
        endpoint_event("gone-ep"),
        malformed,
    ]


def targets_scenarios(account) -> list[dict[str, Any]]:
    """An SSM endpoint coming into service, the scheduled refresh, a deleted endpoint."""
    role = account.role("dev-role")
    account.model("dev-model", role)
    account.endpoint(
        "dev-ep", [{"VariantName": "v", "ModelName": "dev-model", "EnableSSMAccess": True}]
    )
    scheduled = json.loads((ROOT / "events" / "scheduled.json").read_text())
    return [endpoint_event("dev-ep"), scheduled, endpoint_event("gone-ep", status="DELETED")]


SCENARIOS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    "EnforcerFunction": enforcer_scenarios,
    "TargetsFunction": targets_scenarios,
}
"""Handler runs per function (template logical ID); add yours to cross-check the scan."""


def run_scenarios(
    function_id: str,
    account: Any,
    monkeypatch: pytest.MonkeyPatch,
    calls: list[Operation],
    mark: Callable[[dict[str, Any]], None] | None = None,
) -> list[Any]:
    """Build the function's scenarios in the account, then run its handler on each event (after
    `mark` changed it, if given); the calls recorded while building are dropped."""
    monkeypatch.setenv("SESSION_POLICY_ARN", account.policy_arn)
    events = SCENARIOS[function_id](account)
    for event in events:
        if mark is not None:
            mark(event)
    handler = load_handler(function_id)
    calls.clear()
    return [handler(event, FakeContext()) for event in events]
