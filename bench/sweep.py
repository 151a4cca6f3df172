"""The sweep over 100, 1,000 and 5,000 endpoints, and Cloud Custodian on the same account.

For each size the account is built from nothing through the API (`bench.fixture`), then the
stack is deployed and its EventBridge rules disabled: the revert a sweep makes starts an
UpdateEndpoint whose events the per-event benchmark already covers; here they would only add
other functions' calls and CPU to the sweep's numbers.

Per size, in order:
1. the first sweep (it acts: reverts the production endpoints with SSM on, attaches missing
   policies);
2. Cloud Custodian finding the production-tagged endpoints (`bench.custodian`), and
3. the steady-state sweep (nothing left to fix: the hourly common case), alternately,
   `REPEATS` times each: times are medians;
4. one more production endpoint with SSM on, on a config other SSM-enabled endpoints share,
   comes into service: its revert event, delivered to the enforcer.

Each sweep runs the sweep function's handler in a fresh interpreter of its own (`bench.child`),
with the environment the emulator gives its sandbox: calls counted with the botocore hook, time
taken around the handler (Custodian's counterpart: its policy's own duration) and around the
whole process (Custodian's: the `custodian run` process).
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench import custodian, fixture, invoke, paging
from bench.counting import counting
from bench.emulator import ACCOUNT_ID, FIXTURE, REGION, LocalAws, environment
from bench.events import role_of, state_change_event

SIZES = (100, 1000, 5000)
# The steady sweep and Custodian run this many times, alternately; times are medians (the
# machine may be shared, and one run can be slowed by anything else on it).
REPEATS = 3
# A sweep may use a Lambda's whole 15 minutes; the benchmark gives it that, so it never hands
# over to a continuation and one invocation covers the account.
REMAINING_MS = 15 * 60 * 1000


def scheduled_event(rule_arn: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


def _sweep_function(stack: dict[str, Any]) -> str | None:
    """The account's sweep: `SweepFunction`, else the first function named like a sweep."""
    names = sorted(name for name in stack["functions"] if role_of(name) == "sweep")
    return "SweepFunction" if "SweepFunction" in names else (names[0] if names else None)


def _disable_rules(aws: LocalAws, stack: dict[str, Any]) -> list[str]:
    events = aws.client("events")
    disabled = []
    for rule in stack.get("rules", {}).values():
        if rule.get("name"):
            events.disable_rule(Name=rule["name"])
            disabled.append(rule["name"])
    return disabled


def _sweep(function: str, endpoints: int) -> dict[str, Any]:
    """One sweep, in a fresh interpreter of its own (`bench.child`)."""
    event = scheduled_event(f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/bench-sweep")
    ran, wall = invoke.in_child(function, event, remaining_ms=REMAINING_MS)
    calls = sum(ran.calls.values())
    report = ran.result if isinstance(ran.result, dict) else {}
    return {
        "seconds": round(ran.seconds, 3),
        "process_seconds": round(wall, 3),
        "calls": calls,
        "calls_per_endpoint": round(calls / endpoints, 3),
        "calls_by_operation": dict(sorted(ran.calls.items())),
        "error": ran.error,
        "endpoints_seen": report.get("endpoints"),
        "decisions": report.get("decisions"),
        "finished": report.get("finished"),
    }


def _revert_event(aws: LocalAws, stack: dict[str, Any], shape: fixture.Shape) -> dict[str, Any]:
    """A production endpoint with SSM on comes into service in this account, on a config (and
    so a role) that other SSM-enabled endpoints share: what does its revert cost here? (The
    per-event benchmark measures it in an account of six endpoints.)"""
    name = f"{shape.prefix}-late-production"
    sagemaker = aws.client("sagemaker")
    sagemaker.create_endpoint(
        EndpointName=name,
        EndpointConfigName=shape.config_name(0),
        Tags=[{"Key": "environment", "Value": "prod"}],
    )
    fixture.wait_in_service(sagemaker, [name])
    event = state_change_event(sagemaker, name)
    enforcers = [f for f in stack["functions"] if role_of(f) == "enforce"]
    with counting(fresh_clients=True) as counter:
        ran = [invoke.invoke(counter, f, event) for f in enforcers]
    return {
        "endpoint": name,
        "functions": [r.as_dict() for r in ran],
        "calls": sum(sum(r.calls.values()) for r in ran),
        "seconds": round(sum(r.seconds for r in ran), 3),
    }


def _median(runs: list[dict[str, Any]], times: tuple[str, ...]) -> dict[str, Any]:
    """The last run, its times replaced by the medians of all runs (each run's kept too)."""
    if "calls" not in runs[-1]:
        return runs[-1]
    found = dict(runs[-1])
    for key in times:
        values = [float(run[key]) for run in runs]
        found[key] = round(statistics.median(values), 3)
        found[f"{key}_runs"] = values
    return found


def _ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    if "calls" not in theirs or not ours.get("calls"):
        return {}
    return {
        "calls": round(ours["calls"] / theirs["calls"], 3),
        "time_work": round(ours["seconds"] / theirs["policy_seconds"], 3),
        "time_process": round(ours["process_seconds"] / theirs["wall_seconds"], 3),
    }


def run_size(aws: LocalAws, shape: fixture.Shape, *, with_custodian: bool) -> dict[str, Any]:
    aws.reset()
    mark = aws.log.mark()
    built = fixture.build(shape, aws.client)
    result: dict[str, Any] = {
        "endpoints": shape.endpoints,
        "fixture": built.as_dict(),
        "fixture_requests": sum(aws.log.since(mark, caller=FIXTURE).values()),
    }
    if shape.endpoints > 100:
        with environment(aws.env(FIXTURE)):
            result["paging"] = paging.check(shape.endpoints)
    stack = aws.project.deploy_stack()
    result["rules_disabled"] = _disable_rules(aws, stack)
    function = _sweep_function(stack)
    if function is None:
        result["skipped"] = "no sweep function in template.yaml yet"
        return result
    result["function"] = function
    result["first"] = _sweep(function, shape.endpoints)
    theirs, ours = [], []
    for _ in range(REPEATS):
        if with_custodian:
            theirs.append(custodian.run(aws))
        ours.append(_sweep(function, shape.endpoints))
    result["steady"] = _median(ours, ("seconds", "process_seconds"))
    if with_custodian:
        result["custodian"] = _median(theirs, ("policy_seconds", "wall_seconds"))
        result["ours_over_custodian"] = _ratios(result["steady"], result["custodian"])
    result["revert_event"] = _revert_event(aws, stack, shape)
    return result


def run(
    aws: LocalAws, sizes: tuple[int, ...] = SIZES, *, with_custodian: bool = True
) -> dict[str, Any]:
    if aws.project is None:
        return {"skipped": "needs the embedded local AWS (stack deploy)"}
    results: dict[str, Any] = {"custodian_version": custodian.version(), "runs": []}
    for size in sizes:
        started = time.perf_counter()
        run = run_size(aws, fixture.Shape(endpoints=size), with_custodian=with_custodian)
        run["bench_seconds"] = round(time.perf_counter() - started, 1)
        results["runs"].append(run)
    return results
