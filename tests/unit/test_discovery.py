"""Discovery against an in-process moto account: log streams in, parameters out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from _target_streams import calls, instance_id, published_value, ssm_endpoint, write_ssm_stream

from ssm_guard.discovery import (
    TargetsAction,
    on_targets_trigger,
    read_published,
    refresh_all_targets,
    refresh_targets,
    remove_targets,
)
from ssm_guard.targets import STANDARD_VALUE_LIMIT

pytestmark = pytest.mark.unit
EVENTS = Path(__file__).resolve().parents[2] / "events"
PREFIX = "/sagemaker-ssm-guard/targets"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu"


def test_single_container_targets_are_published_once(account, guard) -> None:
    # GIVEN a dev endpoint with SSM on and the SSM stream of its instance
    ssm_endpoint(account, "dev-ep")
    write_ssm_stream("dev-ep", "blue", instance_id(1), [None])
    # WHEN its targets are refreshed
    outcome = refresh_targets(guard, "dev-ep")
    # THEN the single-container target is published, as SageMaker listed it
    assert outcome.action is TargetsAction.PUBLISHED
    value = published_value("dev-ep")
    assert [t["target"] for t in value["targets"]] == [
        f"sagemaker-endpoint:dev-ep_blue_{instance_id(1)}"
    ]
    assert value["targets"][0]["container"] is None
    assert value["targets"][0]["source"] == "log"
    # AND a second refresh writes nothing and reads no log event again
    ssm_calls, log_calls = calls(guard, "ssm"), calls(guard, "logs")
    again = refresh_targets(guard, "dev-ep")
    assert again.action is TargetsAction.UNCHANGED
    assert ssm_calls["PutParameter"] == 0
    assert log_calls["GetLogEvents"] == 0
    version = boto3.client("ssm").get_parameter(Name=f"{PREFIX}/dev-ep")["Parameter"]["Version"]
    assert version == 1


def test_parameter_is_created_with_tags_and_the_standard_tier(account, guard) -> None:
    ssm_endpoint(account, "tagged")
    write_ssm_stream("tagged", "blue", instance_id(1), [None])
    refresh_targets(guard, "tagged")
    ssm = boto3.client("ssm")
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{PREFIX}/tagged")
    assert {t["Key"]: t["Value"] for t in tags["TagList"]} == {
        "managed-by": "sagemaker-ssm-guard",
        "sagemaker-endpoint": "tagged",
    }
    meta = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [f"{PREFIX}/tagged"]}]
    )["Parameters"]
    assert meta[0]["Tier"] == "Standard"


def test_multi_container_targets_keep_default_container_names(account, guard) -> None:
    # GIVEN a model of two containers without hostnames: SageMaker names them container_0/1
    role = account.role("pipe-role")
    account.sagemaker.create_model(
        ModelName="pipe-model",
        ExecutionRoleArn=role,
        Containers=[{"Image": IMAGE}, {"Image": IMAGE}],
    )
    account.endpoint(
        "pipe", [{"VariantName": "blue", "ModelName": "pipe-model", "EnableSSMAccess": True}]
    )
    write_ssm_stream("pipe", "blue", instance_id(7), ["container_0", "container_1"])
    # WHEN refreshed
    outcome = refresh_targets(guard, "pipe")
    # THEN each container has its target, the underscore kept whole
    assert outcome.mismatches == []
    value = published_value("pipe")
    assert [(t["container"], t["target"]) for t in value["targets"]] == [
        ("container_0", f"sagemaker-endpoint:pipe_blue_{instance_id(7)}_container_0"),
        ("container_1", f"sagemaker-endpoint:pipe_blue_{instance_id(7)}_container_1"),
    ]


def test_without_target_lines_targets_are_built_from_the_model(account, guard) -> None:
    # GIVEN an SSM stream whose head lists no target ID (the format is undocumented)
    ssm_endpoint(account, "named", containers=2)
    write_ssm_stream("named", "blue", instance_id(3), ["step-0", "step-1"], list_targets=False)
    outcome = refresh_targets(guard, "named")
    # THEN targets come from the stream's instance and the model's container hostnames
    assert outcome.targets == [
        f"sagemaker-endpoint:named_blue_{instance_id(3)}_step-0",
        f"sagemaker-endpoint:named_blue_{instance_id(3)}_step-1",
    ]
    assert {t["source"] for t in published_value("named")["targets"]} == {"model"}


def test_instances_replaced_by_an_update_are_not_published(account, guard) -> None:
    # GIVEN streams of two instances an hour old (the fleet before the last update)
    ssm_endpoint(account, "updated", instances=2)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    for n in (1, 2):
        write_ssm_stream("updated", "blue", instance_id(n), [None], at=an_hour_ago)
    # AND the two instances that replaced them, written since the endpoint changed
    for n in (3, 4):
        write_ssm_stream("updated", "blue", instance_id(n), [None])
    # WHEN refreshed
    outcome = refresh_targets(guard, "updated")
    # THEN only the live fleet is published
    assert outcome.targets == [
        f"sagemaker-endpoint:updated_blue_{instance_id(3)}",
        f"sagemaker-endpoint:updated_blue_{instance_id(4)}",
    ]


def test_lower_case_log_group_is_read_too(account, guard) -> None:
    ssm_endpoint(account, "lower")
    write_ssm_stream(
        "lower", "blue", instance_id(5), [None], group="/aws/sagemaker/endpoints/lower"
    )
    outcome = refresh_targets(guard, "lower")
    assert outcome.targets == [f"sagemaker-endpoint:lower_blue_{instance_id(5)}"]


def test_deleted_endpoint_loses_its_parameters(account, guard) -> None:
    # GIVEN published targets
    ssm_endpoint(account, "fraud-detector-dev")
    write_ssm_stream("fraud-detector-dev", "blue", instance_id(1), [None])
    assert refresh_targets(guard, "fraud-detector-dev").action is TargetsAction.PUBLISHED
    # WHEN the endpoint is deleted and its DELETED event arrives
    account.sagemaker.delete_endpoint(EndpointName="fraud-detector-dev")
    event = json.loads((EVENTS / "endpoint-deleted.json").read_text())
    result = on_targets_trigger(event, guard)
    # THEN its parameter is gone
    assert result["action"] == "deleted"
    assert read_published(guard, "fraud-detector-dev").exists is False


def test_endpoint_without_ssm_publishes_nothing_and_drops_stale_targets(account, guard) -> None:
    # GIVEN an endpoint without SSM access, and a parameter left from when it had it
    role = account.role("plain-role")
    account.model("plain-model", role)
    account.endpoint("plain", [{"VariantName": "blue", "ModelName": "plain-model"}])
    boto3.client("ssm").put_parameter(
        Name=f"{PREFIX}/plain", Value='{"endpoint":"plain","targets":[]}', Type="String"
    )
    log_calls = calls(guard, "logs")
    # WHEN refreshed
    outcome = refresh_targets(guard, "plain")
    # THEN the stale parameter is deleted and no log was read
    assert outcome.action is TargetsAction.DELETED
    assert outcome.reason == "no variant has SSM access on"
    assert read_published(guard, "plain").exists is False
    assert sum(log_calls.values()) == 0
    # AND a second refresh has nothing to do
    assert refresh_targets(guard, "plain").action is TargetsAction.NONE


def test_containers_ssm_cannot_reach_get_no_target(account, guard) -> None:
    # GIVEN SSM on for a built-in algorithm container (the seed page: no session possible)
    role = account.role("algo-role")
    account.sagemaker.create_model(
        ModelName="algo-model",
        ExecutionRoleArn=role,
        PrimaryContainer={"Image": "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"},
    )
    account.endpoint(
        "algo", [{"VariantName": "blue", "ModelName": "algo-model", "EnableSSMAccess": True}]
    )
    write_ssm_stream("algo", "blue", instance_id(1), [None])
    # WHEN refreshed
    outcome = refresh_targets(guard, "algo")
    # THEN nothing is published, and the reason is given
    assert outcome.action is TargetsAction.NONE
    assert "first-party algorithm" in outcome.unreachable["blue"]
    assert read_published(guard, "algo").exists is False


def test_ssm_on_but_no_stream_yet_publishes_an_empty_set(account, guard) -> None:
    ssm_endpoint(account, "fresh")
    outcome = refresh_targets(guard, "fresh")
    assert outcome.action is TargetsAction.PUBLISHED
    assert "no log group yet" in outcome.reason
    assert published_value("fresh")["targets"] == []


def test_a_large_fleet_goes_advanced_then_into_parts_and_back(account, guard) -> None:
    # GIVEN a multi-container endpoint whose fleet grows
    ssm_endpoint(account, "big", containers=3, instances=40)
    for n in range(12):
        write_ssm_stream("big", "blue", instance_id(n), ["step-0", "step-1", "step-2"])
    ssm = boto3.client("ssm")
    # WHEN 12 instances x 3 containers are published (over 4 KB, under 8 KB)
    refresh_targets(guard, "big")
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Values": [PREFIX]}])
    assert [m["Tier"] for m in meta["Parameters"]] == ["Advanced"]
    assert len(ssm.get_parameter(Name=f"{PREFIX}/big")["Parameter"]["Value"]) > 4096
    # WHEN the fleet reaches 40 instances (far over 8 KB)
    for n in range(12, 40):
        write_ssm_stream("big", "blue", instance_id(n), ["step-0", "step-1", "step-2"])
    outcome = refresh_targets(guard, "big")
    # THEN the set is split into parts that each fit the standard tier, and reads back whole
    values = {
        p["Name"]: p["Value"]
        for p in ssm.get_parameters_by_path(Path=f"{PREFIX}/big", Recursive=True)["Parameters"]
    }
    assert len(values) >= 3
    assert all(len(v) <= STANDARD_VALUE_LIMIT for v in values.values())
    published = read_published(guard, "big")
    assert published.document is not None
    assert len(published.document.targets) == 120 == len(outcome.targets)
    # WHEN the endpoint is deleted, the main parameter and every part go
    account.sagemaker.delete_endpoint(EndpointName="big")
    assert refresh_targets(guard, "big").action is TargetsAction.DELETED
    assert ssm.get_parameters_by_path(Path=PREFIX, Recursive=True)["Parameters"] == []


def test_old_parts_are_cleaned_up_when_the_set_shrinks(account, guard) -> None:
    ssm_endpoint(account, "shrink", containers=3, instances=40)
    for n in range(40):
        write_ssm_stream("shrink", "blue", instance_id(n), ["step-0", "step-1", "step-2"])
    refresh_targets(guard, "shrink")
    # WHEN the endpoint is updated to 1 instance and only its new stream is current
    account.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName="shrink",
        DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredInstanceCount": 1}],
    )
    outcome = refresh_targets(guard, "shrink")
    # THEN one instance's targets remain, in one parameter, and every part is deleted
    assert len(outcome.targets) == 3
    names = [
        p["Name"]
        for p in boto3.client("ssm").get_parameters_by_path(Path=PREFIX, Recursive=True)[
            "Parameters"
        ]
    ]
    assert names == [f"{PREFIX}/shrink"]


def test_dry_run_changes_nothing(account, guard) -> None:
    ssm_endpoint(account, "dry")
    write_ssm_stream("dry", "blue", instance_id(1), [None])
    guard.dry_run = True
    outcome = refresh_targets(guard, "dry")
    assert outcome.action is TargetsAction.PUBLISHED
    assert outcome.reason.startswith("dry run")
    assert read_published(guard, "dry").exists is False


def test_the_schedule_refreshes_every_endpoint_and_drops_vanished_ones(account, guard) -> None:
    # GIVEN an SSM endpoint, a plain one, and a parameter of an endpoint that no longer exists
    ssm_endpoint(account, "swept")
    write_ssm_stream("swept", "blue", instance_id(1), [None])
    role = account.role("plain-role")
    account.model("plain-model", role)
    account.endpoint("plain", [{"VariantName": "blue", "ModelName": "plain-model"}])
    boto3.client("ssm").put_parameter(
        Name=f"{PREFIX}/gone", Value='{"endpoint":"gone","targets":[]}', Type="String"
    )
    # WHEN the scheduled event arrives
    event = json.loads((EVENTS / "scheduled.json").read_text())
    result = on_targets_trigger(event, guard)
    # THEN the SSM endpoint is published, the vanished one deleted, the plain one left alone
    assert result["actions"] == {"published": 1, "none": 1, "deleted": 1}
    assert read_published(guard, "swept").exists
    assert read_published(guard, "gone").exists is False
    assert read_published(guard, "plain").exists is False


def test_the_sweep_reads_each_shared_config_once(account, guard) -> None:
    role = account.role("shared-role")
    account.model("shared-model", role)
    account.sagemaker.create_endpoint_config(
        EndpointConfigName="shared-config",
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": "shared-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    for n in range(5):
        account.sagemaker.create_endpoint(
            EndpointName=f"ep-{n}", EndpointConfigName="shared-config"
        )
    sm_calls = calls(guard, "sagemaker")
    outcomes = refresh_all_targets(guard)
    assert [o.action for o in outcomes] == [TargetsAction.NONE] * 5
    assert sm_calls["DescribeEndpointConfig"] == 1
    assert sm_calls["DescribeEndpoint"] == 5


def test_in_service_event_publishes_and_malformed_event_is_rejected(account, guard) -> None:
    ssm_endpoint(account, "fraud-detector-dev")
    write_ssm_stream("fraud-detector-dev", "blue", instance_id(2), [None])
    event = json.loads((EVENTS / "endpoint-in-service.json").read_text())
    assert on_targets_trigger(event, guard)["action"] == "published"
    assert on_targets_trigger({"detail": "nope"}, guard)["action"] == "malformed-event"


def test_remove_targets_refuses_a_bad_name(account, guard) -> None:
    with pytest.raises(ValueError, match="not a valid SageMaker name"):
        remove_targets(guard, "../../etc")


def test_a_fleet_beyond_one_page_of_streams_is_read_whole(account, guard) -> None:
    # GIVEN 60 instances: more streams than DescribeLogStreams returns in one page (50)
    ssm_endpoint(account, "wide", instances=60)
    for n in range(60):
        write_ssm_stream("wide", "blue", instance_id(n), [None])
    log_calls = calls(guard, "logs")
    # WHEN refreshed
    outcome = refresh_targets(guard, "wide")
    # THEN every instance is published, read over two pages
    assert len(outcome.targets) == 60
    assert log_calls["DescribeLogStreams"] == 2


def test_targets_stay_when_the_config_is_deleted_under_a_live_endpoint(account, guard) -> None:
    # GIVEN published targets of a live endpoint
    ssm_endpoint(account, "still-serving")
    write_ssm_stream("still-serving", "blue", instance_id(1), [None])
    assert refresh_targets(guard, "still-serving").action is TargetsAction.PUBLISHED
    # WHEN someone deletes the config it runs on (AWS allows it) and the schedule refreshes
    account.sagemaker.delete_endpoint_config(EndpointConfigName="still-serving-config")
    by_name = refresh_targets(guard, "still-serving")
    swept = refresh_all_targets(guard)
    # THEN nothing is deleted: the endpoint still serves on those instances
    assert by_name.action is TargetsAction.SKIPPED
    assert [o.action for o in swept if o.endpoint_name == "still-serving"] == [
        TargetsAction.SKIPPED
    ]
    assert read_published(guard, "still-serving").exists is True
