"""The embedded local AWS's own additions, over HTTP, against a small stack of echo functions.

The stack below is written to a temporary folder and deployed like template.yaml, which also
shows the deployment is generic: any functions, layers and rules the template declares.
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ssm_guard.local.api import LocalAws

pytestmark = pytest.mark.integration

# Transitions are held: a test sees Creating/Updating/Deleting for as long as it needs, then
# `in_service` releases them at once (LocalAws.advance) instead of sleeping.
DELAY = 60.0
ROLE = "arn:aws:iam::123456789012:role/endpoint-execution"
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{17}$")

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hello
Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    MemorySize: 192
    Layers:
      - !Ref LibLayer
      - !Sub "arn:aws:lambda:${AWS::Region}:017000801446:layer:\\
          AWSLambdaPowertoolsPythonV3-python313-x86_64:7"
    Environment:
      Variables:
        GREETING: !Ref Greeting
        TOPIC_ARN: !Ref Topic
        ALARM_NAME: !Ref Alarm
Conditions:
  Never: !Equals [a, b]
Resources:
  Topic:
    Type: AWS::SNS::Topic
  ConditionalPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Action: "s3:GetObject", Resource: "*"}
          - !If [Never, {Effect: Allow, Action: "s3:PutObject", Resource: "*"}, !Ref AWS::NoValue]
  TextPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument: !Sub '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "sns:Publish", "Resource": "${Topic}"}]}'
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      ComparisonOperator: GreaterThanThreshold
      EvaluationPeriods: 1
      MetricName: Errors
      Namespace: AWS/Lambda
      Period: 60
      Statistic: Sum
      Threshold: 0
  LibLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/lib
  AllEventsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo
      Handler: app.handler
      Events:
        SageMaker:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.sagemaker]
              detail-type: [{"anything-but": "AWS API Call via CloudTrail"}]
  CloudTrailFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo
      Handler: app.handler
      Events:
        Calls:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.sagemaker]
              detail-type: [AWS API Call via CloudTrail]
  InServiceFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo
      Handler: app.handler
      Events:
        InService:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.sagemaker]
              detail-type: [SageMaker Endpoint State Change]
              detail:
                EndpointStatus: [{"equals-ignore-case": "in_service"}]
                EndpointName: [{"prefix": "watched-"}]
  SsmConfigFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo
      Handler: app.handler
      Events:
        SsmConfig:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.sagemaker]
              detail-type: [SageMaker Endpoint Config State Change]
              detail:
                ProductionVariants:
                  EnableSSMAccess: [true]
                EndpointConfigName: [{"anything-but": {"prefix": "ignored-"}}]
  FailingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/failing
      Handler: app.handler
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/slow
      Handler: app.handler
      Timeout: 1
      Policies:
        - Statement:
            - {Effect: Allow, Action: "sns:Publish", Resource: !Ref Topic}
  NightlyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo
      Handler: app.handler
      Events:
        Nightly:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
            Input: '{"kind": "nightly"}'
Outputs:
  ConditionalPolicyArn:
    Value: !Ref ConditionalPolicy
  TextPolicyArn:
    Value: !Ref TextPolicy
"""

ECHO = """
import os

import echo_lib


def handler(event, context):
    return {
        "event": event,
        "lib": echo_lib.NAME,
        "env": {key: os.environ.get(key) for key in (
            "GREETING", "TOPIC_ARN", "ALARM_NAME", "AWS_ENDPOINT_URL", "AWS_REGION",
            "AWS_LAMBDA_FUNCTION_NAME", "EXTRA")},
        "context": {
            "function_name": context.function_name,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "cwd": os.getcwd(),
    }
"""

SLOW = """
import time


def handler(event, context):
    print("started, remaining", context.get_remaining_time_in_millis())
    time.sleep(event.get("seconds", 5))
    return {"slept": True}
"""

FAILING = """
def handler(event, context):
    raise ValueError("boom: " + str(event.get("why")))
"""


# Session scope: with pytest-xdist's load distribution a worker runs this module's tests
# interleaved with others', and a module-scoped emulator would be rebuilt each time.
@pytest.fixture(scope="session")
def toy_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy-stack")
    files = {
        "template.yaml": TEMPLATE,
        "functions/echo/app.py": ECHO,
        "functions/failing/app.py": FAILING,
        "functions/slow/app.py": SLOW,
        "layers/lib/echo_lib.py": 'NAME = "from the layer"\n',
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def aws(toy_project: Path) -> Iterator[LocalAws]:
    with LocalAws(delay=DELAY, template=toy_project / "template.yaml", isolated=True) as local:
        local.deploy_stack(stack_name="toy")
        yield local


@pytest.fixture(scope="session")
def sagemaker(aws: LocalAws) -> Any:
    return aws.client("sagemaker")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_model(sagemaker: Any, *, containers: list[dict[str, Any]] | None = None) -> str:
    name = unique("model")
    if containers:
        sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE, Containers=containers)
    else:
        sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"}
        )
    return name


def create_config(
    sagemaker: Any,
    *,
    variants: list[dict[str, Any]] | None = None,
    ssm: bool = False,
    count: int = 1,
    name: str | None = None,
) -> str:
    config = name or unique("config")
    variants = variants or [
        {
            "VariantName": "AllTraffic",
            "ModelName": create_model(sagemaker),
            "InitialInstanceCount": count,
            "InitialVariantWeight": 1.0,
            "InstanceType": "ml.g5.xlarge",
            "EnableSSMAccess": ssm,
        }
    ]
    sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=variants)
    return config


def create_endpoint(
    sagemaker: Any, config: str, *, name: str | None = None, tags: dict[str, str] | None = None
) -> str:
    endpoint = name or unique("endpoint")
    sagemaker.create_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=config,
        Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    )
    return endpoint


def in_service(aws: LocalAws, endpoint: str) -> dict[str, Any]:
    """Release the pending transitions and return the endpoint, now in service."""
    aws.advance()
    return aws.wait_for_endpoint(endpoint, timeout=5)


def error_message(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error["Code"], error["Message"]


def events_for(aws: LocalAws, endpoint: str, statuses: list[str]) -> list[dict[str, Any]]:
    """The endpoint events AllEventsFunction received, waiting for the given statuses."""
    found = aws.wait_for_invocations(
        function="AllEventsFunction",
        predicate=lambda i: (
            i.endpoint_name == endpoint
            and i.event["detail-type"] == "SageMaker Endpoint State Change"
            and i.event["detail"]["EndpointStatus"] in statuses
        ),
        count=len(statuses),
        timeout=20,
    )
    return [invocation.event for invocation in found]


# -- UpdateEndpoint ------------------------------------------------------------------------


def test_update_is_refused_while_the_endpoint_is_creating(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN an endpoint that was just created (mixed-case name)
    config = create_config(sagemaker)
    endpoint = create_endpoint(sagemaker, config, name=unique("Fraud-Detector"))

    # WHEN it is updated before it is in service
    with pytest.raises(ClientError) as refused:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)

    # THEN AWS's message names the (lower-cased) endpoint ARN
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{endpoint.lower()}"
    assert error_message(refused) == (
        "ValidationException",
        f'Cannot update in-progress endpoint "{arn}".',
    )
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Creating"
    assert in_service(aws, endpoint)["EndpointArn"] == arn


def test_update_is_refused_while_the_endpoint_is_updating(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN an endpoint in the middle of an update
    config = create_config(sagemaker)
    endpoint = create_endpoint(sagemaker, config)
    in_service(aws, endpoint)
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=create_config(sagemaker))

    # WHEN it is updated (or deleted) again
    with pytest.raises(ClientError) as update:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    with pytest.raises(ClientError) as delete:
        sagemaker.delete_endpoint(EndpointName=endpoint)

    # THEN both are refused as in-progress
    for refused in (update, delete):
        assert error_message(refused)[1].startswith("Cannot update in-progress endpoint")
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"


def test_update_names_a_missing_endpoint_or_config(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN one endpoint in service
    endpoint = create_endpoint(sagemaker, create_config(sagemaker))
    in_service(aws, endpoint)

    # WHEN the endpoint or the config does not exist
    with pytest.raises(ClientError) as no_endpoint:
        sagemaker.update_endpoint(EndpointName="no-such-endpoint", EndpointConfigName="x")
    with pytest.raises(ClientError) as no_config:
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName="No-Such-Config")

    # THEN the messages start as AWS's do
    assert error_message(no_endpoint) == (
        "ValidationException",
        'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:'
        'endpoint/no-such-endpoint".',
    )
    code, message = error_message(no_config)
    assert code == "ValidationException"
    assert message.startswith('Could not find endpoint configuration "arn:aws:sagemaker:')
    assert message.endswith('endpoint-config/no-such-config".')


def test_update_deploys_the_new_config_on_a_new_fleet(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN an endpoint with two instances in service
    endpoint = create_endpoint(sagemaker, create_config(sagemaker, count=2))
    in_service(aws, endpoint)
    old_fleet = aws.instances(endpoint)
    new_config = create_config(sagemaker, count=3, ssm=True)

    # WHEN it is updated to a config with three instances
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)
    updating = sagemaker.describe_endpoint(EndpointName=endpoint)
    serving = in_service(aws, endpoint)

    # THEN it was Updating on the old config, and is now in service on the new one
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] != new_config
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == new_config
    assert serving["EndpointConfigName"] == new_config
    assert "PendingDeploymentSummary" not in serving
    assert serving["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    # AND every instance is new, EC2-style
    new_fleet = aws.instances(endpoint)
    assert [len(ids) for ids in old_fleet.values()] == [2]
    assert [len(ids) for ids in new_fleet.values()] == [3]
    assert not set(old_fleet["AllTraffic"]) & set(new_fleet["AllTraffic"])
    assert all(INSTANCE_ID.match(iid) for iid in new_fleet["AllTraffic"])


def test_a_failed_endpoint_can_be_updated_back_into_service(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN an endpoint that failed while creating
    endpoint = create_endpoint(sagemaker, create_config(sagemaker))
    aws.fail_endpoint(endpoint, "capacity shortage")
    failed = sagemaker.describe_endpoint(EndpointName=endpoint)

    # WHEN it is updated
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=create_config(sagemaker))
    serving = in_service(aws, endpoint)

    # THEN it was Failed with the reason, said so in a FAILED event, and recovered
    assert (failed["EndpointStatus"], failed["FailureReason"]) == ("Failed", "capacity shortage")
    [event] = events_for(aws, endpoint, ["FAILED"])
    assert event["detail"]["FailureReason"] == "capacity shortage"
    assert serving["EndpointStatus"] == "InService"
    assert "FailureReason" not in serving


def test_retain_all_variant_properties_keeps_counts_and_weights(
    aws: LocalAws, sagemaker: Any
) -> None:
    # GIVEN an endpoint scaled to 3 instances at weight 0.5 after creation
    endpoint = create_endpoint(sagemaker, create_config(sagemaker, count=1))
    in_service(aws, endpoint)
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 3, "DesiredWeight": 0.5}
        ],
    )
    in_service(aws, endpoint)

    # WHEN it is updated to a 1-instance config, retaining variant properties
    sagemaker.update_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=create_config(sagemaker, count=1, ssm=True),
        RetainAllVariantProperties=True,
    )
    retained = in_service(aws, endpoint)["ProductionVariants"][0]
    retained_fleet = aws.instances(endpoint)["AllTraffic"]
    # AND again, retaining all but the weight
    sagemaker.update_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=create_config(sagemaker, count=1),
        RetainAllVariantProperties=True,
        ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredWeight"}],
    )
    partly = in_service(aws, endpoint)["ProductionVariants"][0]
    # AND once more without retaining
    sagemaker.update_endpoint(
        EndpointName=endpoint, EndpointConfigName=create_config(sagemaker, count=1)
    )
    fresh = in_service(aws, endpoint)["ProductionVariants"][0]

    # THEN the count and weight survive the first update only as asked
    assert (retained["DesiredInstanceCount"], retained["DesiredWeight"]) == (3, 0.5)
    assert len(retained_fleet) == 3
    assert (partly["DesiredInstanceCount"], partly["DesiredWeight"]) == (3, 1.0)
    assert (fresh["DesiredInstanceCount"], fresh["DesiredWeight"]) == (1, 1.0)
    assert len(aws.instances(endpoint)["AllTraffic"]) == 1


def test_capacity_change_keeps_an_omitted_weight_and_the_running_instances(
    aws: LocalAws, sagemaker: Any
) -> None:
    # GIVEN an endpoint with one instance at weight 1.0
    endpoint = create_endpoint(sagemaker, create_config(sagemaker, count=1))
    in_service(aws, endpoint)
    before = aws.instances(endpoint)["AllTraffic"]

    # WHEN only its instance count changes
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}],
    )
    status = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    variant = in_service(aws, endpoint)["ProductionVariants"][0]

    # THEN the weight is kept and the running instance stays, joined by a new one
    assert status == "Updating"
    assert (variant["DesiredInstanceCount"], variant["DesiredWeight"]) == (2, 1.0)
    after = aws.instances(endpoint)["AllTraffic"]
    assert after[0] == before[0]
    assert len(after) == 2


def test_delete_passes_through_deleting_then_the_endpoint_is_gone(
    aws: LocalAws, sagemaker: Any
) -> None:
    # GIVEN an endpoint still creating, which cannot be deleted yet
    endpoint = create_endpoint(sagemaker, create_config(sagemaker))
    with pytest.raises(ClientError) as too_early:
        sagemaker.delete_endpoint(EndpointName=endpoint)
    in_service(aws, endpoint)

    # WHEN it is deleted once in service
    sagemaker.delete_endpoint(EndpointName=endpoint)
    deleting = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    aws.advance()
    events = events_for(aws, endpoint, ["DELETING", "DELETED"])

    # THEN it was Deleting, then gone, with a DELETED event at the end
    assert error_message(too_early)[1].startswith("Cannot update in-progress endpoint")
    assert deleting == "Deleting"
    with pytest.raises(ClientError) as gone:
        sagemaker.describe_endpoint(EndpointName=endpoint)
    assert error_message(gone)[1].startswith("Could not find endpoint")
    # (deliveries run in parallel: like EventBridge, no order is promised)
    assert {event["detail"]["EndpointStatus"] for event in events} == {"DELETING", "DELETED"}
    assert aws.instances(endpoint) == {}


# -- events --------------------------------------------------------------------------------


def test_endpoint_events_are_shaped_as_aws_sends_them(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN a tagged, mixed-case endpoint that goes in service and is updated
    name = unique("Shape-Check")
    endpoint = create_endpoint(
        sagemaker, create_config(sagemaker, count=2), name=name, tags={"environment": "Prod"}
    )
    in_service(aws, endpoint)
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=create_config(sagemaker))

    # WHEN the events reach the function whose rule matches every SageMaker event
    events = events_for(aws, endpoint, ["CREATING", "IN_SERVICE", "UPDATING"])

    # THEN each has the envelope and detail of a real one
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name.lower()}"
    assert len({event["id"] for event in events}) == 3
    for event in events:
        assert event["source"] == "aws.sagemaker"
        assert event["detail-type"] == "SageMaker Endpoint State Change"
        assert (event["account"], event["region"], event["version"]) == (
            "123456789012",
            "us-east-1",
            "0",
        )
        assert event["resources"] == [arn]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
        detail = event["detail"]
        assert detail["EndpointName"] == name
        assert detail["EndpointArn"] == arn
        assert detail["Tags"] == {"environment": "Prod"}
        assert isinstance(detail["CreationTime"], int)
        assert detail["CreationTime"] > 1.7e12
        assert isinstance(detail["LastModifiedTime"], int)
        assert detail["ProductionVariants"] == [{"DesiredWeight": 1.0, "DesiredInstanceCount": 2}]
    assert "ingestion-time" not in events[0]


def test_config_event_carries_the_full_variants(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN a config with SSM access on, a tag and an execution role
    config = unique("config")
    model = create_model(sagemaker)
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "v1",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "EnableSSMAccess": True,
            }
        ],
        ExecutionRoleArn=ROLE,
        Tags=[{"Key": "team", "Value": "ml"}],
    )

    # WHEN the config event reaches the catch-all function
    [invocation] = aws.wait_for_invocations(
        function="AllEventsFunction",
        predicate=lambda i: i.event["detail"].get("EndpointConfigName") == config,
        timeout=20,
    )

    # THEN it lists the whole variant, nulls included, and the tags as a map
    detail = invocation.event["detail"]
    assert invocation.event["detail-type"] == "SageMaker Endpoint Config State Change"
    assert detail["EndpointConfigArn"].endswith(f"endpoint-config/{config}")
    assert detail["ProductionVariants"][0]["EnableSSMAccess"] is True
    assert detail["ProductionVariants"][0]["ModelName"] == model
    assert detail["ProductionVariants"][0]["AcceleratorType"] is None
    assert detail["Tags"] == {"team": "ml"}
    assert detail["ExecutionRoleArn"] == ROLE
    assert isinstance(detail["CreationTime"], int)
    # AND DescribeEndpointConfig keeps the role moto would drop
    assert sagemaker.describe_endpoint_config(EndpointConfigName=config)["ExecutionRoleArn"] == ROLE


def test_calls_reach_eventbridge_via_cloudtrail_only_while_a_trail_logs(
    aws: LocalAws, sagemaker: Any
) -> None:
    # GIVEN an endpoint tagged once without a trail
    endpoint = create_endpoint(sagemaker, create_config(sagemaker))
    arn = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "before", "Value": "trail"}])
    aws.advance()
    aws.settle()
    mark = aws.mark()

    # WHEN it is tagged and described again while a trail logs management events
    trail = unique("trail")
    aws.client("s3").create_bucket(Bucket=trail)
    cloudtrail = aws.client("cloudtrail")
    cloudtrail.create_trail(Name=trail, S3BucketName=trail)
    cloudtrail.start_logging(Name=trail)
    try:
        sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "Environment", "Value": "Production"}])
        sagemaker.describe_endpoint(EndpointName=endpoint)
        aws.settle()
    finally:
        cloudtrail.delete_trail(Name=trail)

    # THEN only the mutating call reached EventBridge, in CloudTrail's lowerCamelCase
    [call] = [i for i in aws.invocations_since(mark) if i.function == "CloudTrailFunction"]
    detail = call.event["detail"]
    assert (detail["eventSource"], detail["eventName"]) == ("sagemaker.amazonaws.com", "AddTags")
    assert detail["requestParameters"] == {
        "resourceArn": arn,
        "tags": [{"key": "Environment", "value": "Production"}],
    }
    # AND LookupEvents finds both calls, newest first, with or without a trail
    found = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}],
        MaxResults=50,
    )["Events"]
    assert [e["EventName"] for e in found][:2] == ["AddTags", "AddTags"]
    keys = [json.loads(e["CloudTrailEvent"])["requestParameters"]["tags"][0]["key"] for e in found]
    assert keys[:2] == ["Environment", "before"]
    # AND tagging a key again replaced its value instead of adding a second tag
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "before", "Value": "replaced"}])
    tags = sagemaker.list_tags(ResourceArn=arn)["Tags"]
    assert [t["Value"] for t in tags if t["Key"] == "before"] == ["replaced"]


def test_a_rule_that_does_not_match_never_invokes_its_function(
    aws: LocalAws, sagemaker: Any
) -> None:
    # GIVEN InServiceFunction's rule: IN_SERVICE (any case) of endpoints named watched-*
    mark = aws.mark()
    watched = create_endpoint(sagemaker, create_config(sagemaker), name=unique("watched"))
    other = create_endpoint(sagemaker, create_config(sagemaker), name=unique("other"))

    # WHEN both endpoints go through Creating to InService
    aws.advance()
    events_for(aws, watched, ["CREATING", "IN_SERVICE"])
    events_for(aws, other, ["CREATING", "IN_SERVICE"])
    aws.advance()
    aws.settle()

    # THEN only the watched endpoint's IN_SERVICE event reached it
    invocations = [i for i in aws.invocations_since(mark) if i.function == "InServiceFunction"]
    assert [(i.endpoint_name, i.event["detail"]["EndpointStatus"]) for i in invocations] == [
        (watched, "IN_SERVICE")
    ]
    # AND an event put by hand that the pattern rejects runs nothing
    rejected = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Endpoint State Change",
        "detail": {"EndpointName": "watched-manual", "EndpointStatus": "UPDATING"},
    }
    ran = aws.send([rejected])
    assert {i.function for i in ran} == {"AllEventsFunction"}


def test_patterns_match_inside_arrays_of_objects(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN configs with and without SSM, and one whose name the rule excludes
    mark = aws.mark()
    with_ssm = create_config(sagemaker, ssm=True)
    create_config(sagemaker, ssm=False)
    create_config(sagemaker, ssm=True, name=unique("ignored"))

    # WHEN their config events are delivered
    aws.advance()
    aws.settle()

    # THEN the rule on detail.ProductionVariants.EnableSSMAccess fired for the first only
    ran = [i for i in aws.invocations_since(mark) if i.function == "SsmConfigFunction"]
    assert [i.event["detail"]["EndpointConfigName"] for i in ran] == [with_ssm]


def test_a_disabled_rule_delivers_nothing(aws: LocalAws) -> None:
    # GIVEN the catch-all rule disabled
    events = aws.client("events")
    rule = aws.stack["rules"]["AllEventsFunctionSageMaker"]["name"]  # type: ignore[index]
    events.disable_rule(Name=rule)
    try:
        # WHEN a SageMaker event is put on the bus
        ran = aws.send([{"source": "aws.sagemaker", "detail-type": "Anything", "detail": {"x": 1}}])
    finally:
        events.enable_rule(Name=rule)

    # THEN nothing ran
    assert ran == []


# -- log streams ---------------------------------------------------------------------------


def test_ssm_log_streams_are_written_for_ssm_variants_only(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN an endpoint with an SSM variant on a two-container model and a plain variant
    multi = create_model(
        sagemaker,
        containers=[{"Image": "a", "ContainerHostname": "scorer"}, {"Image": "b"}],
    )
    variants = [
        {
            "VariantName": "ssm",
            "ModelName": multi,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "EnableSSMAccess": True,
        },
        {
            "VariantName": "plain",
            "ModelName": create_model(sagemaker),
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
        },
    ]
    endpoint = create_endpoint(sagemaker, create_config(sagemaker, variants=variants))

    # WHEN it comes in service
    in_service(aws, endpoint)

    # THEN the SSM variant has its ssm stream and one stream per container; the plain one not
    logs = aws.client("logs")
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    streams = {
        s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
    }
    fleet = aws.instances(endpoint)
    ssm_id, plain_id = fleet["ssm"][0], fleet["plain"][0]
    assert streams == {
        f"ssm/{ssm_id}/ssm",
        f"ssm/{ssm_id}/scorer",
        f"ssm/{ssm_id}/container_1",
        f"plain/{plain_id}",
    }
    # AND the ssm stream opens with every container's target id, each line prefixed
    lines = [
        e["message"]
        for e in logs.get_log_events(
            logGroupName=group, logStreamName=f"ssm/{ssm_id}/ssm", startFromHead=True
        )["events"]
    ]
    base = f"sagemaker-endpoint:{endpoint}_ssm_{ssm_id}"
    assert lines[:2] == [
        f"[sagemaker ssm logs][scorer] SSM target id: {base}_scorer",
        f"[sagemaker ssm logs][container_1] SSM target id: {base}_container_1",
    ]
    assert all(re.match(r"\[sagemaker ssm logs\]\[(scorer|container_1)\] ", line) for line in lines)
    assert any("Successfully registered the instance with AWS SSM" in line for line in lines)


def test_old_instances_streams_remain_after_an_update(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN an SSM endpoint in service
    endpoint = create_endpoint(sagemaker, create_config(sagemaker, ssm=True))
    in_service(aws, endpoint)
    [old] = aws.instances(endpoint)["AllTraffic"]

    # WHEN it is updated to another SSM config
    sagemaker.update_endpoint(
        EndpointName=endpoint, EndpointConfigName=create_config(sagemaker, ssm=True)
    )
    in_service(aws, endpoint)
    [new] = aws.instances(endpoint)["AllTraffic"]

    # THEN both instances' ssm streams exist: readers must keep live instances only
    logs = aws.client("logs")
    streams = logs.describe_log_streams(
        logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}", logStreamNamePrefix="AllTraffic/"
    )["logStreams"]
    names = {stream["logStreamName"] for stream in streams}
    assert {f"AllTraffic/{old}/ssm", f"AllTraffic/{new}/ssm"} <= names


def test_describe_log_streams_pages_at_fifty(aws: LocalAws) -> None:
    # GIVEN a log group with 55 streams
    logs = aws.client("logs")
    group = f"/test/{unique('paging')}"
    logs.create_log_group(logGroupName=group)
    for index in range(55):
        logs.create_log_stream(logGroupName=group, logStreamName=f"v/{index:02d}")

    # WHEN it is listed
    first = logs.describe_log_streams(logGroupName=group)
    second = logs.describe_log_streams(logGroupName=group, nextToken=first["nextToken"])

    # THEN pages hold 50 at most
    assert (len(first["logStreams"]), len(second["logStreams"])) == (50, 5)


# -- Search, ARNs --------------------------------------------------------------------------


def test_search_pages_and_honours_every_filter(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN five endpoints tagged for this test, two of them also owned by team a
    run = unique("run")
    config = create_config(sagemaker)
    names = [
        create_endpoint(sagemaker, config, tags={"run": run, "team": "a" if i < 2 else "b"})
        for i in range(5)
    ]
    tag_filter = {"Name": "Tags.run", "Operator": "Equals", "Value": run}

    # WHEN they are searched two per page
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = sagemaker.search(
            Resource="Endpoint",
            SearchExpression={"Filters": [tag_filter]},
            MaxResults=2,
            SortBy="CreationTime",
            SortOrder="Ascending",
            **kwargs,
        )
        pages.append([r["Endpoint"]["EndpointName"] for r in page["Results"]])
        token = page.get("NextToken")
        if not token:
            break
    # AND with a second filter after the tag filter
    team_a = sagemaker.search(
        Resource="Endpoint",
        SearchExpression={
            "Filters": [tag_filter, {"Name": "Tags.team", "Operator": "Equals", "Value": "a"}]
        },
    )

    # THEN the pages hold 2, 2 and 1, in creation order, and the second filter applies
    assert pages == [names[0:2], names[2:4], names[4:5]]
    assert sorted(r["Endpoint"]["EndpointName"] for r in team_a["Results"]) == sorted(names[:2])
    assert team_a["Results"][0]["Endpoint"]["Tags"]
    # AND more than 100 per page is refused
    with pytest.raises(ClientError) as too_many:
        sagemaker.search(Resource="Endpoint", MaxResults=101)
    assert error_message(too_many)[0] == "ValidationException"


def test_list_endpoints_pages_by_ten_unless_asked_for_up_to_a_hundred(
    aws: LocalAws, sagemaker: Any
) -> None:
    # GIVEN eleven endpoints whose names share a unique part
    run = unique("list")
    config = create_config(sagemaker)
    for index in range(11):
        create_endpoint(sagemaker, config, name=f"{run}-{index}")

    # WHEN they are listed without and with a page size
    default = sagemaker.list_endpoints(NameContains=run)
    large = sagemaker.list_endpoints(NameContains=run, MaxResults=100)

    # THEN AWS's default page of 10 applies, and more than 100 is refused
    assert len(default["Endpoints"]) == 10
    assert "NextToken" in default
    assert len(large["Endpoints"]) == 11
    with pytest.raises(ClientError) as too_many:
        sagemaker.list_endpoints(MaxResults=101)
    assert error_message(too_many)[0] == "ValidationException"


def test_tags_resolve_through_a_lower_cased_arn(aws: LocalAws, sagemaker: Any) -> None:
    # GIVEN a mixed-case endpoint
    name = unique("Mixed-Case")
    endpoint = create_endpoint(sagemaker, create_config(sagemaker), name=name, tags={"k": "v"})

    # WHEN its ARN (lower-cased, as AWS returns it) is used to tag and list tags
    arn = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "k2", "Value": "v2"}])
    tags = sagemaker.list_tags(ResourceArn=arn)["Tags"]

    # THEN it resolves to the endpoint
    assert arn.endswith(name.lower())
    assert {tag["Key"] for tag in tags} == {"k", "k2"}
    in_service(aws, endpoint)


# -- CloudFormation ------------------------------------------------------------------------


def test_policies_deploy_as_cloudformation_would_create_them(aws: LocalAws) -> None:
    # GIVEN managed policies with a statement under a false condition and a !Sub JSON text
    iam = aws.client("iam")
    outputs = (aws.stack or {})["outputs"]

    # WHEN their documents are read back
    def statements(arn: str) -> list[dict[str, Any]]:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        return list(version["PolicyVersion"]["Document"]["Statement"])

    # THEN the conditional statement is gone, and the text was substituted and parsed
    assert [s["Action"] for s in statements(outputs["ConditionalPolicyArn"])] == ["s3:GetObject"]
    [publish] = statements(outputs["TextPolicyArn"])
    assert publish["Resource"].startswith("arn:aws:sns:us-east-1:123456789012:")
    # AND a function role's inline policy reads back as JSON (boto3 decodes it to a dict)
    role = (
        aws.client("lambda")
        .get_function_configuration(FunctionName=aws.function_name("SlowFunction"))["Role"]
        .rsplit("/", 1)[-1]
    )
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    inline = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    assert inline["Statement"][0]["Action"] == "sns:Publish"


# -- Lambda --------------------------------------------------------------------------------


def test_functions_run_in_a_lambda_like_sandbox(aws: LocalAws) -> None:
    # GIVEN the deployed echo function
    stack = aws.stack or {}
    name = aws.function_name("AllEventsFunction")

    # WHEN it is invoked with an extra variable
    invocation = aws.invoke("AllEventsFunction", {"hello": "world"}, env_overrides={"EXTRA": "1"})

    # THEN it saw its template environment resolved by the stack, the layer, and the emulator
    assert invocation.ok, invocation.error
    result = invocation.result
    topic = aws.client("sns").list_topics()["Topics"]
    assert result["event"] == {"hello": "world"}
    assert result["lib"] == "from the layer"
    env = result["env"]
    assert env["GREETING"] == "hello"
    assert env["TOPIC_ARN"] in {t["TopicArn"] for t in topic}
    assert env["ALARM_NAME"] == "toy-Alarm-not-emulated"
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url
    assert (env["AWS_REGION"], env["AWS_LAMBDA_FUNCTION_NAME"], env["EXTRA"]) == (
        "us-east-1",
        name,
        "1",
    )
    context = result["context"]
    assert context["function_name"] == name
    assert context["invoked_function_arn"].endswith(f":function:{name}")
    assert context["memory_limit_in_mb"] == 192
    assert context["aws_request_id"] == invocation.request_id
    assert 0 < context["remaining_ms"] <= 10_000
    assert result["cwd"].endswith("functions/echo")
    # AND the stack says what it could not emulate
    assert stack["skipped"] == ["Alarm"]


def test_lambda_invoke_runs_the_handler_and_reports_errors(aws: LocalAws) -> None:
    # GIVEN the AWS Lambda API of the emulator
    lambda_client = aws.client("lambda")

    # WHEN the echo and the failing functions are invoked through it
    ok = lambda_client.invoke(
        FunctionName=aws.function_name("AllEventsFunction"), Payload=json.dumps({"a": 1})
    )
    failed = lambda_client.invoke(
        FunctionName=aws.function_name("FailingFunction"), Payload=json.dumps({"why": "test"})
    )

    # THEN the payloads are the handler's result and Lambda's error shape
    assert json.loads(ok["Payload"].read())["event"] == {"a": 1}
    assert "FunctionError" not in ok
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "boom: test")
    # AND the failure is recorded with its logs
    [record] = aws.wait_for_invocations(function="FailingFunction", predicate=lambda i: not i.ok)
    assert "ValueError: boom: test" in record.logs


def test_a_handler_that_outlives_its_timeout_is_stopped(aws: LocalAws) -> None:
    # WHEN a function with a 1 s Timeout sleeps longer
    invocation = aws.invoke("SlowFunction", {"seconds": 5})

    # THEN Lambda's timeout error is recorded about a second into the handler
    assert not invocation.ok
    assert invocation.error is not None
    assert invocation.error["errorType"] == "Sandbox.Timedout"
    assert invocation.error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "started, remaining" in invocation.logs
    assert invocation.duration_ms < 4000


def test_function_logs_reach_cloudwatch(aws: LocalAws) -> None:
    # GIVEN a failing invocation
    invocation = aws.invoke("FailingFunction", {"why": "logs"})

    # WHEN the function's log group is read
    logs = aws.client("logs")
    group = f"/aws/lambda/{aws.function_name('FailingFunction')}"
    events = logs.filter_log_events(logGroupName=group)["events"]
    messages = [event["message"] for event in events]

    # THEN the request is framed as Lambda frames it
    assert not invocation.ok
    assert f"START RequestId: {invocation.request_id} Version: $LATEST" in messages
    assert any(m.startswith(f"REPORT RequestId: {invocation.request_id}") for m in messages)


# -- schedules -----------------------------------------------------------------------------


def test_a_due_one_time_schedule_fires_once_and_is_deleted(aws: LocalAws) -> None:
    # GIVEN a one-time schedule in the past targeting the echo function, deleted after use
    scheduler = aws.client("scheduler")
    name = unique("once")
    when = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule(
        Name=name,
        ScheduleExpression=f"at({when})",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": aws.stack["functions"]["NightlyFunction"]["arn"],  # type: ignore[index]
            "RoleArn": ROLE,
            "Input": json.dumps({"schedule": name}),
        },
    )

    # WHEN the scheduler loop (or an explicit check) sees it
    [invocation] = aws.wait_for_invocations(
        function="NightlyFunction",
        predicate=lambda i: i.event == {"schedule": name},
        timeout=10,
    )

    # THEN it ran with the target's input, and is gone
    assert invocation.trigger["type"] == "scheduler"
    with pytest.raises(ClientError):
        scheduler.get_schedule(Name=name)
    assert aws.fire_due_schedules() == []


def test_a_future_schedule_can_be_fired_early(aws: LocalAws) -> None:
    # GIVEN a one-time schedule an hour from now, kept after use
    scheduler = aws.client("scheduler")
    name = unique("later")
    when = datetime.now(UTC) + timedelta(hours=1)
    scheduler.create_schedule(
        Name=name,
        ScheduleExpression=f"at({when:%Y-%m-%dT%H:%M:%S})",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": aws.stack["functions"]["NightlyFunction"]["arn"],  # type: ignore[index]
            "RoleArn": ROLE,
            "Input": json.dumps({"schedule": name}),
        },
    )

    # WHEN the emulator is asked to fire what is due in two hours, twice
    fired = aws.fire_due_schedules(now=when + timedelta(hours=1))
    again = aws.fire_due_schedules(now=when + timedelta(hours=1))

    # THEN it ran once, and the schedule stays (ActionAfterCompletion NONE)
    assert [invocation.event for invocation in fired] == [{"schedule": name}]
    assert again == []
    assert scheduler.get_schedule(Name=name)["Name"] == name


def test_a_scheduled_rule_fires_on_demand_with_its_input(aws: LocalAws) -> None:
    # WHEN the rule behind NightlyFunction's `Schedule` event is fired by function name
    [invocation] = aws.fire_schedule("NightlyFunction")

    # THEN the target's constant input was delivered
    assert invocation.ok
    assert invocation.event == {"kind": "nightly"}
    assert invocation.trigger["type"] == "schedule-rule"
