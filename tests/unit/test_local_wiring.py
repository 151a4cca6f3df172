"""The local emulator's wiring, without a server: template handling, event delivery rules,
schedules, and the command line's file formats."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from ssm_guard.local import deploy, eventbridge, schedules
from ssm_guard.local.api import to_put_events_entry
from ssm_guard.local.cli import env_overrides_for

pytestmark = pytest.mark.unit

SAM = """
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    CodeUri: functions/default
    Layers:
      - !Ref Lib
      - arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:7
Resources:
  Lib:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/lib
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmActions: [!Ref Topic]
  Topic:
    Type: AWS::SNS::Topic
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worker/
      Handler: app.handler
      Environment:
        Variables:
          ALARM: !GetAtt Alarm.Arn
          ALARM_TEXT: !Sub "alarm ${Alarm} on ${Topic}"
      Events:
        Tick:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 hour)
  Defaulted:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
  Remote:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://bucket/key.zip
      Handler: app.handler
"""


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(SAM), encoding="utf-8")
    return path


def test_templates_load_with_short_form_intrinsics(template: Path) -> None:
    template.write_text(
        template.read_text(encoding="utf-8")
        + "Conditions:\n  Both: !And [!Condition A, !Not [!Equals [!Ref P, x]]]\n",
        encoding="utf-8",
    )

    loaded = deploy.load_template(template)

    assert loaded["Conditions"]["Both"] == {
        "Fn::And": [{"Condition": "A"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, "x"]}]}]
    }
    env = loaded["Resources"]["Worker"]["Properties"]["Environment"]["Variables"]
    assert env["ALARM"] == {"Fn::GetAtt": ["Alarm", "Arn"]}
    assert env["ALARM_TEXT"] == {"Fn::Sub": "alarm ${Alarm} on ${Topic}"}
    assert loaded["AWSTemplateFormatVersion"] == "2010-09-09"


def test_local_code_paths_become_dummy_objects(template: Path) -> None:
    sam, code = deploy._local_code(deploy.load_template(template), template.parent)
    resources = sam["Resources"]
    assert resources["Worker"]["Properties"]["CodeUri"] == "s3://ssm-guard-local-code/Worker.zip"
    assert code["Worker.zip"] == (template.parent / "functions/worker").resolve()
    assert code["Defaulted.zip"] == (template.parent / "functions/default").resolve()
    assert code["Lib.zip"] == (template.parent / "layers/lib").resolve()
    assert "Remote.zip" not in code
    assert resources["Remote"]["Properties"]["CodeUri"] == "s3://bucket/key.zip"


def test_what_moto_cannot_create_is_cut_and_its_references_replaced(template: Path) -> None:
    sam, _ = deploy._local_code(deploy.load_template(template), template.parent)
    cfn = deploy.to_cloudformation(sam, {}, region="us-east-1", account_id="123456789012")

    trimmed, skipped = deploy.for_moto(cfn, stack_name="s")

    resources = trimmed["Resources"]
    assert "Alarm" in skipped
    assert any(name.startswith("WorkerTick") for name in skipped)  # the Scheduler schedule
    assert not set(skipped) & set(resources)
    worker = resources["Worker"]["Properties"]
    env = worker["Environment"]["Variables"]
    assert env["ALARM"] == "s-Alarm-not-emulated"
    assert env["ALARM_TEXT"] == {"Fn::Sub": "alarm s-Alarm-not-emulated on ${Topic}"}
    # only the template's own layer is kept; the public Powertools layer is the venv's job
    assert len(worker["Layers"]) == 1
    assert worker["Layers"][0]["Ref"].startswith("Lib")


def test_stack_name_comes_from_samconfig(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources: {}\n", encoding="utf-8")
    assert deploy.default_stack_name(template) == "sagemaker-ssm-guard"
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "mine"\n', encoding="utf-8"
    )
    assert deploy.default_stack_name(template) == "mine"


# -- event delivery ------------------------------------------------------------------------

EVENT = {
    "version": "0",
    "id": "1",
    "detail-type": "SageMaker Endpoint Config State Change",
    "source": "aws.sagemaker",
    "time": 1796306797.5,
    "ingestion-time": 1796306797.6,
    "resources": [],
    "detail": {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {"VariantName": "a", "EnableSSMAccess": None},
            {"VariantName": "b", "EnableSSMAccess": True},
        ],
        "Tags": {"Environment": "PROD"},
    },
}


def matches(pattern: dict[str, Any]) -> bool:
    eventbridge.install()  # the array flattening; idempotent
    try:
        return EventPattern.load(json.dumps(pattern)).matches_event(EVENT)
    finally:
        eventbridge.uninstall()


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"detail": {"ProductionVariants": {"EnableSSMAccess": [True]}}}, True),
        ({"detail": {"ProductionVariants": {"VariantName": ["c"]}}}, False),
        ({"detail": {"Tags": {"Environment": [{"equals-ignore-case": "prod"}]}}}, True),
        ({"detail-type": [{"prefix": "SageMaker Endpoint Config"}]}, True),
        ({"source": [{"anything-but": ["aws.sagemaker"]}]}, False),
    ],
)
def test_patterns_see_inside_arrays_of_objects(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern) is expected


def test_without_the_addition_moto_cannot_match_inside_arrays() -> None:
    pattern = {"detail": {"ProductionVariants": {"EnableSSMAccess": [True]}}}
    assert EventPattern.load(json.dumps(pattern)).matches_event(EVENT) is False


def test_lambda_gets_an_iso_time_and_no_moto_fields() -> None:
    event = eventbridge.lambda_event(EVENT)
    assert event["time"] == "2026-12-03T14:06:37Z"
    assert "ingestion-time" not in event
    assert EVENT["time"] == 1796306797.5  # the original is left alone


def test_targets_get_their_input_path_or_transformer() -> None:
    event = eventbridge.lambda_event(EVENT)
    assert eventbridge.target_payload({"Input": '{"a": 1}'}, event) == {"a": 1}
    assert eventbridge.target_payload({"InputPath": "$.detail.Tags"}, event) == {
        "Environment": "PROD"
    }
    transformer = {
        "InputPathsMap": {"name": "$.detail.EndpointConfigName"},
        "InputTemplate": '{"config": "<name>"}',
    }
    assert eventbridge.target_payload({"InputTransformer": transformer}, event) == {"config": "c"}
    assert eventbridge.target_payload({}, event) is event


# -- schedules and files -------------------------------------------------------------------


def test_one_time_schedules_fire_in_their_time_zone() -> None:
    due = schedules.due_time("at(2026-12-03T15:00:00)", "Europe/Paris")
    assert due == datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    assert schedules.due_time("rate(5 minutes)", None) is None
    assert schedules.due_time("at(2026-12-03T15:00:00)", None) == datetime(
        2026, 12, 3, 15, 0, tzinfo=UTC
    )


def test_env_vars_files_follow_sam_semantics() -> None:
    env_file = {
        "Parameters": {"LOG_LEVEL": "DEBUG", "UNDECLARED": "x"},
        "EnforcerFunction": {"GUARDRAIL_MODE": "monitor", "LOG_LEVEL": "INFO"},
        "OtherFunction": {"GUARDRAIL_MODE": "enforce"},
    }
    overrides, ignored = env_overrides_for(
        env_file, "EnforcerFunction", "stack-Enforcer-1", {"LOG_LEVEL", "GUARDRAIL_MODE"}
    )
    assert overrides == {"LOG_LEVEL": "INFO", "GUARDRAIL_MODE": "monitor"}
    assert ignored == ["UNDECLARED"]


def test_event_files_become_put_events_entries() -> None:
    entry = to_put_events_entry(
        {
            "source": "aws.sagemaker",
            "detail-type": "SageMaker Endpoint State Change",
            "time": "2026-12-03T14:06:37Z",
            "resources": ["arn:r"],
            "detail": {"EndpointName": "e"},
        }
    )
    assert entry["Source"] == "aws.sagemaker"
    assert json.loads(entry["Detail"]) == {"EndpointName": "e"}
    assert entry["Time"] == datetime(2026, 12, 3, 14, 6, 37, tzinfo=UTC)
    assert entry["Resources"] == ["arn:r"]
    raw = to_put_events_entry({"Source": "s", "DetailType": "d", "Detail": {"k": 1}})
    assert raw["Detail"] == '{"k": 1}'
    with pytest.raises(ValueError, match="detail-type"):
        to_put_events_entry({"source": "s"})
