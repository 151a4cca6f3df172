"""Reliability end to end on the embedded local AWS, over HTTP: copies of an endpoint's life
delivered at once, a busy endpoint retried by one-time schedules, the sweep catching what events
missed, and a retry that outlived its maximum age landing in the dead-letter queue."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _local_endpoints import sagemaker_role, ssm_endpoint

from ssm_guard.local.api import LocalAws

pytestmark = pytest.mark.integration

HOLD = 600.0
"""An endpoint transition delay no test waits for: `advance()` completes it on demand."""


def _attached(client: Callable[[str], Any], role: str) -> list[str]:
    found = client("iam").list_attached_role_policies(RoleName=role.rsplit("/", 1)[-1])
    return [p["PolicyArn"] for p in found["AttachedPolicies"]]


@pytest.fixture
def held(local_aws: LocalAws) -> Iterator[LocalAws]:
    """Endpoints stay Creating/Updating until the test calls `advance()`."""
    local_aws.settle()
    local_aws.set_delay(HOLD)
    try:
        yield local_aws
    finally:
        local_aws.advance()
        local_aws.set_delay(float(os.environ.get("SSM_GUARD_LOCAL_DELAY_SECONDS", "0.2")))
        local_aws.settle()


def _queue(client: Callable[[str], Any], prefix: str) -> tuple[str, str]:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=f"{prefix}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def _drain(client: Callable[[str], Any], url: str) -> list[dict[str, Any]]:
    sqs, found = client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _wait_for_event(
    client: Callable[[str], Any], url: str, status: str, seen: list[dict[str, Any]]
) -> dict[str, Any]:
    for _ in range(100):
        seen.extend(_drain(client, url))
        for event in seen:
            if event["detail"]["EndpointStatus"] == status:
                return event
        client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1, VisibilityTimeout=0)
    raise AssertionError(f"no {status} event among {[e['detail']['EndpointStatus'] for e in seen]}")


def _retries_of(client: Callable[[str], Any], name: str) -> list[dict[str, Any]]:
    """The events the pending one-time retry schedules would send about endpoint `name`."""
    scheduler, found = client("scheduler"), []
    for summary in scheduler.list_schedules()["Schedules"]:
        target = scheduler.get_schedule(Name=summary["Name"])["Target"]
        event = json.loads(target.get("Input") or "{}")
        if isinstance(event, dict) and event.get("detail", {}).get("EndpointName") == name:
            found.append(event)
    return found


def _copies(events: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    copies = []
    for index in range(count):
        event = dict(events[index % len(events)])
        event["id"] = str(uuid.uuid4())  # SageMaker's duplicates carry their own ids
        copies.append(event)
    random.shuffle(copies)
    return copies


def _put_concurrently(local_aws: LocalAws, events: list[dict[str, Any]]) -> list[str]:
    batches = [events[i : i + 5] for i in range(0, len(events), 5)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return [i for ids in pool.map(local_aws.put_events, batches) for i in ids]


def test_100_copies_of_an_endpoints_life_make_one_revert_and_one_alert(
    held: LocalAws, local_client: Callable[[str], Any]
) -> None:
    local_aws = held
    name = f"life-{uuid.uuid4().hex[:8]}"
    # GIVEN a queue recording this endpoint's events, and one subscribed to the alerts
    life_url, life_arn = _queue(local_client, "life")
    events = local_client("events")
    events.put_rule(
        Name=f"{name}-life",
        EventPattern=json.dumps(
            {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Endpoint State Change"],
                "detail": {"EndpointName": [name]},
            }
        ),
    )
    events.put_targets(Rule=f"{name}-life", Targets=[{"Id": "q", "Arn": life_arn}])
    alerts_url, alerts_arn = _queue(local_client, "alerts")
    topic = (local_aws.stack or {})["outputs"]["AlertTopicArn"]
    local_client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=alerts_arn)
    mark = local_aws.mark()
    # WHEN a production endpoint is created with SSM on and comes into service, and 50 copies
    # of its CREATING and IN_SERVICE events arrive at once, with the real one (IN_SERVICE runs
    # two functions, each a Python process here: a fifth of the copies keeps the test short)
    role = ssm_endpoint(local_client, name, {"environment": "production"})
    seen: list[dict[str, Any]] = []
    creating = _wait_for_event(local_client, life_url, "CREATING", seen)
    local_aws.advance()
    in_service = _wait_for_event(local_client, life_url, "IN_SERVICE", seen)
    ids = _put_concurrently(local_aws, _copies([creating] * 4 + [in_service], 50))
    local_aws.wait_for_deliveries(ids, timeout=300)
    # AND, once the revert's update is done, 50 more copies of every event of its life
    local_aws.advance()
    local_aws.settle(timeout=120)
    updating = _wait_for_event(local_client, life_url, "UPDATING", seen)
    distinct = {(e["detail"]["EndpointStatus"], e["detail"]["LastModifiedTime"]): e for e in seen}
    life = [e for (status, _), e in distinct.items() if status == "IN_SERVICE"]
    assert len(life) == 2  # before and after the revert
    ids = _put_concurrently(local_aws, _copies([creating, updating] * 2 + life, 50))
    local_aws.wait_for_deliveries(ids, timeout=300)
    local_aws.settle(timeout=120)
    # THEN the endpoint was reverted exactly once
    runs = [
        i
        for i in local_aws.invocations_since(mark)
        if i.function == "EnforcerFunction" and i.endpoint_name == name
    ]
    assert all(i.ok for i in runs), [i.error for i in runs if not i.ok]
    did_work = [i for i in runs if i.result.get("decision") and not i.result.get("duplicate")]
    assert [i.decision for i in did_work].count("reverted") == 1, [i.decision for i in did_work]
    assert {i.decision for i in did_work} <= {"reverted", "no-ssm"}
    # The 10 copies of IN_SERVICE in the first burst, and the real one, found SSM on (or the
    # endpoint updating): one reverted, the others answered from its record. Copies arriving
    # after the revert read the endpoint live, find SSM off and claim nothing (no-ssm).
    assert sum(1 for i in runs if i.result.get("duplicate")) >= 10
    described = local_client("sagemaker").describe_endpoint(EndpointName=name)
    config = local_client("sagemaker").describe_endpoint_config(
        EndpointConfigName=described["EndpointConfigName"]
    )
    assert [v.get("EnableSSMAccess") for v in config["ProductionVariants"]] == [False]
    copies_made = [
        c["EndpointConfigName"]
        for c in local_client("sagemaker").list_endpoint_configs(NameContains=name)[
            "EndpointConfigs"
        ]
        if c["EndpointConfigName"] != f"{name}-config"
    ]
    assert copies_made == [described["EndpointConfigName"]]
    # AND the owners were alerted once
    subjects = [m["Subject"] for m in _drain(local_client, alerts_url)]
    assert subjects == [f"[ssm-guard] SSM access reverted on production endpoint {name}"]
    # AND the right targets: none published for an endpoint without SSM, no policy on its role
    prefix = "/sagemaker-ssm-guard/targets"
    published = local_client("ssm").get_parameters_by_path(Path=f"{prefix}/{name}", Recursive=True)
    assert published["Parameters"] == []
    assert _attached(local_client, role) == []


def test_a_busy_endpoint_is_retried_by_schedule_until_it_settles(
    held: LocalAws, local_client: Callable[[str], Any]
) -> None:
    local_aws = held
    name = f"busy-{uuid.uuid4().hex[:8]}"
    # GIVEN a dev endpoint with SSM on that stays Creating, and an IN_SERVICE event that
    # arrived early (or is stale: the endpoint is busy again)
    role = ssm_endpoint(local_client, name, {"environment": "dev"})
    arn = local_client("sagemaker").describe_endpoint(EndpointName=name)["EndpointArn"]
    early = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Endpoint State Change",
        "resources": [arn],
        "detail": {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointStatus": "IN_SERVICE",
            "LastModifiedTime": 1764770797000,
        },
    }
    # WHEN it is delivered
    [first] = [i for i in local_aws.send([early]) if i.function == "EnforcerFunction"]
    # THEN nothing is attached yet and a retry is scheduled on EventBridge Scheduler
    assert first.decision == "not-in-service"
    assert first.result["details"]["retry"]["state"] == "scheduled"
    assert _attached(local_client, role) == []
    [scheduled] = _retries_of(local_client, name)
    assert scheduled["ssm-guard-retry"]["attempt"] == 1
    # WHEN the retry fires while the endpoint is still busy
    later = datetime.now(UTC) + timedelta(minutes=2)
    second = [i for i in local_aws.fire_due_schedules(now=later) if i.endpoint_name == name]
    # THEN it schedules the next attempt
    assert [i.result["details"]["retry"]["attempt"] for i in second] == [2]
    # WHEN the endpoint settles and the last retry fires
    local_aws.advance()
    local_aws.settle(timeout=120)
    much_later = datetime.now(UTC) + timedelta(minutes=10)
    third = [i for i in local_aws.fire_due_schedules(now=much_later) if i.endpoint_name == name]
    # THEN the policy is on the role and no retry is left
    assert [i.decision for i in third] in (["compliant"], ["attached"])
    policy = (local_aws.stack or {})["outputs"]["SessionPolicyArn"]
    assert policy in _attached(local_client, role)
    assert _retries_of(local_client, name) == []


def test_a_retry_past_its_maximum_age_lands_in_the_dead_letter_queue(
    held: LocalAws, local_client: Callable[[str], Any]
) -> None:
    local_aws = held
    name = f"stuck-{uuid.uuid4().hex[:8]}"
    role = ssm_endpoint(local_client, name, {"environment": "dev"})
    arn = local_client("sagemaker").describe_endpoint(EndpointName=name)["EndpointArn"]
    old = int((datetime.now(UTC) - timedelta(days=2)).timestamp() * 1000)
    event = {
        "version": "0",
        "id": "retry",
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Endpoint State Change",
        "resources": [arn],
        "detail": {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointStatus": "IN_SERVICE",
            "LastModifiedTime": old,
        },
        "ssm-guard-retry": {"attempt": 30, "first_seen_ms": old, "reason": "busy"},
    }
    queue = (local_aws.stack or {})["outputs"]["DeadLetterQueueUrl"]
    _drain(local_client, queue)
    result = local_aws.invoke("EnforcerFunction", event)
    assert result.ok, result.error
    assert result.decision == "failed"
    letters = [m for m in _drain(local_client, queue) if m.get("endpoint_name") == name]
    assert [m["kind"] for m in letters] == ["retries-exhausted"]
    assert "30 retries" in letters[0]["reason"]
    assert _attached(local_client, role) == []


@pytest.fixture(scope="module")
def own_aws() -> Iterator[LocalAws]:
    """An emulator of its own: a sweep reads the whole account, and the shared one holds other
    tests' endpoints (some failed or half-deleted on purpose, which stop the cleanup)."""
    with LocalAws(delay=0.2, isolated=True) as aws:
        aws.deploy_stack()
        yield aws


def test_the_sweep_catches_what_events_missed_and_cleans_up(own_aws: LocalAws) -> None:
    local_aws = own_aws

    def local_client(service: str) -> Any:
        return local_aws.client(service, max_attempts=2)

    # GIVEN a dev endpoint whose role lost the policy (as if its event never came), and a role
    # holding the policy that no endpoint uses any more
    name = f"swept-{uuid.uuid4().hex[:8]}"
    role = ssm_endpoint(local_client, name, {"environment": "dev"})
    local_aws.settle(timeout=120)
    policy = (local_aws.stack or {})["outputs"]["SessionPolicyArn"]
    iam = local_client("iam")
    if policy in _attached(local_client, role):
        iam.detach_role_policy(RoleName=role.rsplit("/", 1)[-1], PolicyArn=policy)
    orphan = sagemaker_role(iam, f"orphan-{uuid.uuid4().hex[:8]}")
    iam.attach_role_policy(RoleName=orphan.rsplit("/", 1)[-1], PolicyArn=policy)
    # WHEN the sweep's schedule fires
    [run] = local_aws.fire_schedule("SweepFunction", timeout=300)
    # THEN it reattached the policy and detached the orphan's
    assert run.ok, run.error
    assert run.result["finished"] is True
    assert policy in _attached(local_client, role)
    assert _attached(local_client, orphan) == []
    assert orphan.rsplit("/", 1)[-1] in run.result["cleanup"]["detached"]
