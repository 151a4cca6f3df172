"""The production guardrail end to end on the embedded local AWS: SageMaker API in, events
through the template's rules, the enforcer's revert, the endpoint back in service, the alert."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _local_endpoints import ssm_endpoint

from ssm_guard.local.api import LocalAws

pytestmark = pytest.mark.integration
# Two instances, so a revert must keep the count; config tags, so the copy must carry them.
GUARDED: dict[str, Any] = {"instances": 2, "config_tags": {"team": "fraud"}}


@pytest.fixture
def alert_queue(local_aws: LocalAws, local_client: Callable[[str], Any]) -> Callable[[], list]:
    """An SQS queue subscribed to the stack's alert topic; returns a reader of SNS envelopes."""
    sqs, sns = local_client("sqs"), local_client("sns")
    url = sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    topic = (local_aws.stack or {})["outputs"]["AlertTopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])

    def read() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    return read


def test_a_production_endpoint_is_reverted_back_in_service_with_counts_kept(
    local_aws: LocalAws, local_client: Callable[[str], Any], alert_queue: Callable[[], list]
) -> None:
    # GIVEN a production endpoint created with SSM on, its variant scaled from 2 to 3 instances
    name = f"prod-{uuid.uuid4().hex[:8]}"
    mark = local_aws.mark()
    role = ssm_endpoint(local_client, name, {"environment": "production"}, **GUARDED)
    sagemaker = local_client("sagemaker")
    # WHEN it comes into service, the guard sees it
    [reverted] = local_aws.wait_for_invocations(
        function="EnforcerFunction",
        predicate=lambda i: i.endpoint_name == name and i.decision == "reverted",
        since=mark,
        timeout=60,
    )
    local_aws.settle()
    # THEN it is back in service on the guard's copy, SSM off, counts kept, role untouched
    described = local_aws.wait_for_endpoint(name)
    new_config = reverted.result["details"]["new_config"]
    assert described["EndpointConfigName"] == new_config
    config = sagemaker.describe_endpoint_config(EndpointConfigName=new_config)
    assert [v.get("EnableSSMAccess") for v in config["ProductionVariants"]] == [False]
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    tags = sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]
    assert {"Key": "team", "Value": "fraud"} in tags
    policies = local_client("iam").list_attached_role_policies(RoleName=role.rsplit("/", 1)[-1])
    assert policies["AttachedPolicies"] == []
    # AND the owners were told, once
    messages = alert_queue()
    assert [m["Subject"] for m in messages] == [
        f"[ssm-guard] SSM access reverted on production endpoint {name}"
    ]
    # AND the events of the revert itself ended as no-ops (no loop)
    others = [
        i
        for i in local_aws.invocations_since(mark)
        if i.function == "EnforcerFunction" and i.endpoint_name == name and i.seq != reverted.seq
    ]
    assert others
    assert {i.decision for i in others} == {"no-ssm"}


def test_a_valid_exception_keeps_ssm_until_it_expires(
    local_aws: LocalAws, local_client: Callable[[str], Any]
) -> None:
    # GIVEN a production endpoint with SSM on and an exception one hour ahead
    name = f"prod-x-{uuid.uuid4().hex[:8]}"
    until = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mark = local_aws.mark()
    tags = {"env": "prod", "ssm-guard:exception-until": until}
    role = ssm_endpoint(local_client, name, tags, **GUARDED)
    # WHEN it comes into service
    local_aws.wait_for_invocations(
        function="EnforcerFunction",
        predicate=lambda i: i.endpoint_name == name and i.decision == "exception-granted",
        since=mark,
        timeout=60,
    )
    # THEN the role holds the session policy and an expiry re-check is scheduled
    policies = local_client("iam").list_attached_role_policies(RoleName=role.rsplit("/", 1)[-1])
    assert len(policies["AttachedPolicies"]) == 1
    # WHEN the expiry comes: the guard's clock is the real one, so time passing is played by
    # moving the tag into the past, then running the scheduler two hours ahead
    arn = local_client("sagemaker").describe_endpoint(EndpointName=name)["EndpointArn"]
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    local_client("sagemaker").add_tags(
        ResourceArn=arn, Tags=[{"Key": "ssm-guard:exception-until", "Value": past}]
    )
    fired = local_aws.fire_due_schedules(now=datetime.now(UTC) + timedelta(hours=2))
    # THEN the re-check finds the exception expired and takes access back
    mine = [i for i in fired if i.endpoint_name == name]
    assert [i.decision for i in mine] == ["exception-expired"], [i.summary() for i in fired]
    local_aws.settle()
    described = local_aws.wait_for_endpoint(name)
    assert "-ssm-off-" in described["EndpointConfigName"]
    # AND the role, used by no other SSM endpoint, no longer holds the session policy
    policies = local_client("iam").list_attached_role_policies(RoleName=role.rsplit("/", 1)[-1])
    assert policies["AttachedPolicies"] == []
