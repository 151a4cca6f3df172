"""Pure rules of the local emulator's SageMaker additions: event shapes, fleets, SSM targets."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from ssm_guard.local import shapes

pytestmark = pytest.mark.unit

CREATED = datetime(2026, 12, 3, 14, 6, 37, 120000)  # naive UTC, as moto keeps it


@pytest.mark.parametrize(
    ("api", "event"),
    [
        ("InService", "IN_SERVICE"),
        ("Creating", "CREATING"),
        ("SystemUpdating", "SYSTEM_UPDATING"),
        ("UpdateRollbackFailed", "UPDATE_ROLLBACK_FAILED"),
        ("OutOfService", "OUT_OF_SERVICE"),
    ],
)
def test_event_status_is_upper_snake(api: str, event: str) -> None:
    assert shapes.event_status(api) == event


def test_epoch_ms_reads_naive_datetimes_as_utc() -> None:
    assert shapes.epoch_ms(CREATED) == 1796306797120
    assert shapes.epoch_ms(CREATED.replace(tzinfo=UTC)) == 1796306797120


def test_instance_ids_look_like_ec2_ids_and_differ() -> None:
    ids = {shapes.new_instance_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"i-[0-9a-f]{17}", iid) for iid in ids)


def test_tags_become_a_flat_map() -> None:
    tags = [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": ""}]
    assert shapes.tags_map(tags) == {"env": "prod", "team": ""}
    assert shapes.tags_map(None) == {}


CONFIG = [
    {"VariantName": "a", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0},
    {"VariantName": "new", "InitialInstanceCount": 2, "InitialVariantWeight": 0.0},
]
CURRENT = [
    {"VariantName": "a", "DesiredInstanceCount": 4, "DesiredWeight": 0.3},
    {"VariantName": "gone", "DesiredInstanceCount": 9, "DesiredWeight": 0.7},
]


def test_without_retention_the_new_config_decides() -> None:
    variants = shapes.next_variants(CURRENT, CONFIG, retain_all=False)
    assert [
        (v["VariantName"], v["DesiredInstanceCount"], v["DesiredWeight"]) for v in variants
    ] == [
        ("a", 1, 1.0),
        ("new", 2, 0.0),
    ]


def test_retention_keeps_existing_variants_properties_only() -> None:
    variants = shapes.next_variants(CURRENT, CONFIG, retain_all=True)
    assert [
        (v["VariantName"], v["CurrentInstanceCount"], v["CurrentWeight"]) for v in variants
    ] == [
        ("a", 4, 0.3),
        ("new", 2, 0.0),
    ]


def test_excluded_properties_come_from_the_new_config() -> None:
    variants = shapes.next_variants(CURRENT, CONFIG, retain_all=True, exclude=["DesiredWeight"])
    assert (variants[0]["DesiredInstanceCount"], variants[0]["DesiredWeight"]) == (4, 1.0)


def test_a_resized_fleet_keeps_running_instances() -> None:
    fleet = {"a": ["i-1", "i-2", "i-3"], "b": ["i-4"]}
    resized = shapes.resized_fleet(
        fleet,
        [
            {"VariantName": "a", "DesiredInstanceCount": 1},
            {"VariantName": "b", "DesiredInstanceCount": 3},
        ],
    )
    assert resized["a"] == ["i-1"]
    assert resized["b"][0] == "i-4"
    assert len(resized["b"]) == 3


def test_serverless_variants_have_no_instances() -> None:
    summaries = shapes.variant_summaries(
        [{"VariantName": "s", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}]
    )
    assert shapes.new_fleet(summaries) == {"s": []}
    assert summaries[0]["DesiredServerlessConfig"]["MemorySizeInMB"] == 2048


@pytest.mark.parametrize(
    ("model", "names", "multi"),
    [
        (None, ["container_0"], False),
        ({"PrimaryContainer": {"Image": "x"}, "Containers": []}, ["container_0"], False),
        ({"PrimaryContainer": {"ContainerHostname": "web"}}, ["web"], False),
        ({"Containers": [{"ContainerHostname": "solo"}]}, ["solo"], False),
        (
            {"Containers": [{"ContainerHostname": "pre"}, {"Image": "y"}, {"Image": "z"}]},
            ["pre", "container_1", "container_2"],
            True,
        ),
    ],
)
def test_container_names_follow_the_seed_page(
    model: dict[str, object] | None, names: list[str], multi: bool
) -> None:
    assert shapes.container_names(model) == (names, multi)


def test_target_ids_name_the_container_only_for_multi_container_models() -> None:
    single = shapes.ssm_target_ids("ep", "v1", "i-0123456789abcdef0", ["container_0"], False)
    multi = shapes.ssm_target_ids("ep", "v1", "i-0123456789abcdef0", ["a", "b"], True)
    assert single == ["sagemaker-endpoint:ep_v1_i-0123456789abcdef0"]
    assert multi == [
        "sagemaker-endpoint:ep_v1_i-0123456789abcdef0_a",
        "sagemaker-endpoint:ep_v1_i-0123456789abcdef0_b",
    ]


def test_ssm_log_lists_every_target_first_with_the_prefix() -> None:
    lines = shapes.ssm_log_lines("ep", "v1", "i-0123456789abcdef0", ["a", "b"], True)
    assert (
        lines[0]
        == "[sagemaker ssm logs][a] SSM target id: sagemaker-endpoint:ep_v1_i-0123456789abcdef0_a"
    )
    assert lines[1].startswith("[sagemaker ssm logs][b] SSM target id: ")
    assert not any("SSM target id" in line for line in lines[2:])
    assert all(line.startswith("[sagemaker ssm logs][") for line in lines)


def test_container_streams_are_per_container_for_multi_container_models() -> None:
    assert list(shapes.container_log_streams("v", "i-1", ["container_0"], False)) == ["v/i-1"]
    assert list(shapes.container_log_streams("v", "i-1", ["a", "b"], True)) == [
        "v/i-1/a",
        "v/i-1/b",
    ]


def test_endpoint_event_detail_matches_the_documented_example() -> None:
    detail = shapes.endpoint_event_detail(
        name="MyEndpoint",
        arn="arn:aws:sagemaker:us-east-1:123456789012:endpoint/myendpoint",
        config_name="MyEndpointConfig",
        variants=[
            {
                "VariantName": "v",
                "DesiredWeight": 1.0,
                "DesiredInstanceCount": 1,
                "CurrentWeight": 1.0,
            }
        ],
        status="IN_SERVICE",
        created=CREATED,
        modified=CREATED,
        tags=[{"Key": "project", "Value": "x"}],
    )
    assert detail == {
        "EndpointName": "MyEndpoint",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/myendpoint",
        "EndpointConfigName": "MyEndpointConfig",
        "ProductionVariants": [{"DesiredWeight": 1.0, "DesiredInstanceCount": 1}],
        "EndpointStatus": "IN_SERVICE",
        "CreationTime": 1796306797120,
        "LastModifiedTime": 1796306797120,
        "Tags": {"project": "x"},
    }


def test_config_event_detail_fills_unset_fields_with_null() -> None:
    config = {
        "EndpointConfigName": "c",
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c",
        "ProductionVariants": [{"VariantName": "v", "ModelName": "m", "RoutingConfig": {"x": 1}}],
        "DataCaptureConfig": {},
    }
    detail = shapes.config_event_detail(config, created=CREATED, tags=[])
    variant = detail["ProductionVariants"][0]
    assert variant["EnableSSMAccess"] is None
    assert variant["RoutingConfig"] == {"x": 1}
    assert detail["DataCaptureConfig"] is None
    assert detail["Tags"] == {}
    assert "ExecutionRoleArn" not in detail
