"""AWS calls per event, for each path the guard takes.

Each scenario builds endpoints through the API before the stack is deployed (so nothing reacts
to their creation), deploys template.yaml into the embedded local AWS, then delivers the
`SageMaker Endpoint State Change` event SageMaker sends when an endpoint comes into service:

- end to end, on one copy of the endpoint: the event goes on the bus, the emulator's rules
  invoke every matching function in a fresh interpreter each (a cold Lambda), and everything
  that follows (an UpdateEndpoint's own events, alerts, rechecks) runs until the account
  settles. Calls are the requests the functions signed, counted on the server side.
- in process, on a second copy: the same event goes to the functions the end-to-end run showed
  it reaches, called in this interpreter with the environment the emulator gives them, and
  each function's calls are counted with a botocore `before-call` hook.

Each delivery is repeated once, as EventBridge and SageMaker may repeat an event: the duplicate.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import fixture, invoke
from bench.counting import counting
from bench.emulator import ACCOUNT_ID, GUARD, REGION, LocalAws


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    ssm: bool
    production: bool

    def shape(self) -> fixture.Shape:
        """Two copies of the endpoint, each with its own config, model and role: one for the
        end-to-end run, one for the in-process run."""
        return fixture.Shape(
            endpoints=2,
            endpoints_per_config=1,
            roles=2,
            models=2,
            ssm_config_every=1 if self.ssm else 0,
            production_every=1 if self.production else 0,
            production_ssm=2,
            prefix=f"ev-{self.key}",
        )


SCENARIOS = (
    Scenario("no-ssm", "endpoint without SSM access", ssm=False, production=False),
    Scenario("ssm-on", "SSM access on, not production", ssm=True, production=False),
    Scenario("production", "SSM access on, tagged production", ssm=True, production=True),
)


def role_of(logical_id: str) -> str:
    """Which path a template function stands for, by its name."""
    name = logical_id.lower()
    for role, words in (
        ("sweep", ("sweep",)),
        ("publish", ("target", "discover", "publish")),
        ("enforce", ("enforc", "guardrail", "revert")),
    ):
        if any(word in name for word in words):
            return role
    return "other"


def state_change_event(sagemaker: Any, name: str) -> dict[str, Any]:
    """What SageMaker sends when the endpoint reaches InService (aws-facts 1.2): upper-case
    status, tags as a flat map, times in epoch milliseconds."""
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    tags = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "SageMaker Endpoint State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [endpoint["EndpointArn"]],
        "detail": {
            "EndpointName": name,
            "EndpointArn": endpoint["EndpointArn"],
            "EndpointConfigName": endpoint["EndpointConfigName"],
            "EndpointStatus": "IN_SERVICE",
            "CreationTime": int(endpoint["CreationTime"].timestamp() * 1000),
            "LastModifiedTime": int(endpoint["LastModifiedTime"].timestamp() * 1000),
            "Tags": {t["Key"]: t["Value"] for t in tags},
        },
    }


def _end_to_end(aws: LocalAws, event: dict[str, Any]) -> dict[str, Any]:
    """Put the event on the bus; count what the invoked functions call until all is quiet."""
    from ssm_guard.local.api import to_put_events_entry

    events = aws.client("events")
    mark = aws.log.mark()
    sent = events.put_events(Entries=[to_put_events_entry(event)])["Entries"][0]["EventId"]
    invocations = aws.project.wait_for_deliveries([sent], timeout=300)
    aws.settle()
    calls = aws.log.since(mark, caller=GUARD)
    return {
        "invocations": [
            {
                "function": i.function,
                "decision": invoke.decision_of(i.result),
                "error": (i.error or {}).get("errorType"),
            }
            for i in invocations
        ],
        "calls": sum(calls.values()),
        "calls_by_operation": dict(sorted(calls.items())),
    }


def _deliver_twice_in_process(
    functions: list[str], event: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from ssm_guard.aws import iam as iam_api

    # A new container for each scenario: fresh clients, no quota read yet.
    iam_api._quota.cache_clear()  # noqa: SLF001
    with counting(fresh_clients=True) as counter:
        first = [invoke.invoke(counter, name, event).as_dict() for name in functions]
        again = [invoke.invoke(counter, name, event).as_dict() for name in functions]
    return first, again


def _total(rows: list[dict[str, Any]]) -> int:
    return sum(int(row["calls"]) for row in rows)


def run(aws: LocalAws) -> dict[str, Any]:
    if aws.project is None:
        return {"skipped": "needs the embedded local AWS (stack deploy and rule delivery)"}
    for scenario in SCENARIOS:
        fixture.build(scenario.shape(), aws.client)
    stack = aws.project.deploy_stack()
    sagemaker = aws.client("sagemaker")
    results: dict[str, Any] = {
        "functions_deployed": sorted(stack["functions"]),
        "stack_skipped": stack.get("skipped", []),
        "scenarios": [],
    }
    for scenario in SCENARIOS:
        shape = scenario.shape()
        end_to_end_event = state_change_event(sagemaker, shape.endpoint_name(1))
        cold = _end_to_end(aws, end_to_end_event)
        duplicate = _end_to_end(aws, end_to_end_event)
        reached = sorted({i["function"] for i in cold["invocations"]})
        event = state_change_event(sagemaker, shape.endpoint_name(0))
        first, again = _deliver_twice_in_process(reached, event)
        by_operation: Counter[str] = Counter()
        for row in first:
            by_operation.update(row["calls_by_operation"])
        results["scenarios"].append(
            {
                "key": scenario.key,
                "title": scenario.title,
                "functions_reached": reached,
                "in_process": {
                    "first": first,
                    "duplicate": again,
                    "calls": _total(first),
                    "duplicate_calls": _total(again),
                    "calls_by_operation": dict(sorted(by_operation.items())),
                },
                "end_to_end": {"first": cold, "duplicate": duplicate},
            }
        )
    return results
