"""Target IDs, live instances and the published layout: pure functions, no AWS."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssm_guard.targets import (
    ADVANCED_TIER,
    ADVANCED_VALUE_LIMIT,
    SOURCE_LOG,
    SOURCE_MODEL,
    STANDARD_TIER,
    STANDARD_VALUE_LIMIT,
    Instance,
    LogStream,
    Target,
    TargetError,
    TargetsDocument,
    TornReadError,
    build_target_id,
    choose,
    decode,
    endpoint_of,
    find_target_ids,
    instance_targets,
    instances_from_streams,
    layout,
    parse_stream_name,
    parse_target_id,
    select_live_instances,
    ssm_log_container,
    stale_names,
)

pytestmark = pytest.mark.unit

PREFIX = "/sagemaker-ssm-guard/targets"
INSTANCE = "i-003a121c1b21a90a9"


# --- target IDs -------------------------------------------------------------------------------


def test_single_container_target_id_has_no_container_part() -> None:
    target = build_target_id("prod-image-classifier", "variant1", INSTANCE)
    assert target == f"sagemaker-endpoint:prod-image-classifier_variant1_{INSTANCE}"
    parsed = parse_target_id(target)
    assert (parsed.endpoint, parsed.variant, parsed.instance, parsed.container) == (
        "prod-image-classifier",
        "variant1",
        INSTANCE,
        None,
    )


def test_default_container_names_keep_their_underscore() -> None:
    # GIVEN the seed page's own example, a multi-container target with `container_1`
    target = f"sagemaker-endpoint:prod-image-classifier_variant1_{INSTANCE}_container_1"
    # WHEN it is parsed
    parsed = parse_target_id(target)
    # THEN the container name is whole, and building it again gives the same ID
    assert parsed.container == "container_1"
    assert parsed.instance == INSTANCE
    assert build_target_id("prod-image-classifier", "variant1", INSTANCE, "container_1") == target


def test_named_container_with_hyphens() -> None:
    target = build_target_id("ep", "blue", INSTANCE, "step-0")
    assert parse_target_id(target).container == "step-0"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sagemaker-endpoint:",
        f"ep_variant_{INSTANCE}",
        f"sagemaker-endpoint:ep_{INSTANCE}",
        "sagemaker-endpoint:ep_variant_i-XYZ",
        f"sagemaker-endpoint:ep_variant_{INSTANCE}_",
        f"sagemaker-endpoint:ep__variant_{INSTANCE}",
        f"mi-123 sagemaker-endpoint:ep_variant_{INSTANCE}",
    ],
)
def test_malformed_target_ids_are_rejected(bad: str) -> None:
    with pytest.raises(TargetError):
        parse_target_id(bad)


def test_names_with_underscores_cannot_make_a_target() -> None:
    # SageMaker names cannot hold `_`; a target built from one would be ambiguous.
    with pytest.raises(TargetError):
        build_target_id("ep", "my_variant", INSTANCE)


_sagemaker_names = st.from_regex(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,20}", fullmatch=True)
_containers = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=14).map(lambda n: f"container_{n}"),
    _sagemaker_names,
)


@given(
    endpoint=_sagemaker_names,
    variant=_sagemaker_names,
    instance=st.from_regex(r"i-[0-9a-f]{8}([0-9a-f]{9})?", fullmatch=True),
    container=_containers,
)
def test_every_target_id_parses_back_to_its_parts(
    endpoint: str, variant: str, instance: str, container: str | None
) -> None:
    parsed = parse_target_id(build_target_id(endpoint, variant, instance, container))
    assert (parsed.endpoint, parsed.variant, parsed.instance, parsed.container) == (
        endpoint,
        variant,
        instance,
        container,
    )


@pytest.mark.parametrize(
    "line",
    [
        "[sagemaker ssm logs][container_1] SSM target id: {t}",
        "Target IDs: {t}, sagemaker-endpoint:other_variant1_i-0abc_container_0",
        '{{"targets": ["{t}"]}}',
        "connect with: aws ssm start-session --target {t}.",
    ],
)
def test_target_ids_are_found_in_any_line_format(line: str) -> None:
    target = f"sagemaker-endpoint:ep_variant1_{INSTANCE}_container_1"
    found = find_target_ids(
        line.format(t=target), endpoint="ep", variant="variant1", instance=INSTANCE
    )
    assert found == [target]


def test_finding_is_anchored_on_the_endpoint_variant_and_instance() -> None:
    # GIVEN a line that mentions a longer endpoint name, another variant and another instance
    text = (
        f"sagemaker-endpoint:ep-2_variant1_{INSTANCE} "
        f"sagemaker-endpoint:ep_variant10_{INSTANCE} "
        "sagemaker-endpoint:ep_variant1_i-0ffffffffffffffff "
        f"sagemaker-endpoint:ep_variant1_{INSTANCE}"
    )
    # THEN only this endpoint's variant's instance is taken
    found = find_target_ids(text, endpoint="ep", variant="variant1", instance=INSTANCE)
    assert found == [f"sagemaker-endpoint:ep_variant1_{INSTANCE}"]


def test_ssm_log_prefix_names_the_container() -> None:
    assert ssm_log_container("[sagemaker ssm logs][container_0] Starting Amazon SSM Agent") == (
        "container_0",
        "Starting Amazon SSM Agent",
    )
    assert ssm_log_container("plain line\n") == (None, "plain line")


# --- streams and live instances ---------------------------------------------------------------


def test_stream_names() -> None:
    ssm = parse_stream_name(f"blue/{INSTANCE}/ssm")
    main = parse_stream_name(f"blue/{INSTANCE}")
    pipeline = parse_stream_name(f"blue/{INSTANCE}/container_1")
    assert ssm is not None
    assert main is not None
    assert pipeline is not None
    assert (ssm.ssm, ssm.container) == (True, None)
    assert (main.ssm, main.container) == (False, None)
    assert (pipeline.ssm, pipeline.container) == (False, "container_1")
    assert parse_stream_name("data-capture/2026/12/03") is None


def _stream(name: str, created: int, last: int | None = None) -> LogStream:
    return LogStream(name=name, created_ms=created, last_event_ms=last, last_ingestion_ms=last)


def test_streams_group_by_instance() -> None:
    found = instances_from_streams(
        [
            _stream(f"blue/{INSTANCE}/ssm", 100, 150),
            _stream(f"blue/{INSTANCE}", 90, 400),
            _stream("green/i-0aaaaaaaaaaaaaaaa", 50),
            _stream("unrelated", 1),
        ]
    )
    blue = found[("blue", INSTANCE)]
    assert (blue.first_seen_ms, blue.last_seen_ms) == (90, 400)
    assert blue.ssm_stream == f"blue/{INSTANCE}/ssm"
    assert set(found) == {("blue", INSTANCE), ("green", "i-0aaaaaaaaaaaaaaaa")}


def _instance(name: str, first: int, last: int) -> Instance:
    return Instance("blue", name, first_seen_ms=first, last_seen_ms=last)


def test_instances_replaced_by_an_update_are_dropped() -> None:
    # GIVEN two instances of the fleet before an update, and the two that replaced them
    old = [_instance("i-01", 1_000, 5_000), _instance("i-02", 1_000, 5_100)]
    new = [_instance("i-03", 9_000, 12_000), _instance("i-04", 9_100, 12_000)]
    # WHEN the endpoint was last modified at 10_000 and has two instances
    live = select_live_instances(old + new, modified_ms=10_000, instance_count=2)
    # THEN only the new fleet is live
    assert {i.instance for i in live} == {"i-03", "i-04"}


def test_a_new_fleet_that_logged_only_while_updating_still_wins() -> None:
    # GIVEN LastModifiedTime set when the endpoint came into service, after every stream
    old = [_instance("i-01", 1_000, 2_000)]
    new = [_instance("i-02", 8_000, 8_500)]
    # THEN the newer fleet is chosen by when its streams were created
    live = select_live_instances(old + new, modified_ms=10_000, instance_count=1)
    assert [i.instance for i in live] == ["i-02"]


def test_instance_count_caps_and_zero_means_none() -> None:
    fleet = [_instance(f"i-0{n}", 1_000 * n, 20_000) for n in range(1, 5)]
    assert len(select_live_instances(fleet, modified_ms=10_000, instance_count=3)) == 3
    assert select_live_instances(fleet, modified_ms=10_000, instance_count=0) == []


def test_without_a_count_only_instances_seen_since_the_change_are_kept() -> None:
    fleet = [_instance("i-01", 1_000, 2_000), _instance("i-02", 9_000, 11_000)]
    live = select_live_instances(fleet, modified_ms=10_000, instance_count=None)
    assert [i.instance for i in live] == ["i-02"]


# --- targets of one instance ------------------------------------------------------------------


def test_logged_target_ids_are_published_as_they_are() -> None:
    logged = [
        f"sagemaker-endpoint:ep_blue_{INSTANCE}_container_0",
        f"sagemaker-endpoint:ep_blue_{INSTANCE}_container_1",
    ]
    result = instance_targets(
        endpoint="ep",
        variant="blue",
        instance=INSTANCE,
        containers=["container_0", "container_1"],
        logged_ids=logged,
    )
    assert [t.target for t in result.targets] == logged
    assert {t.source for t in result.targets} == {SOURCE_LOG}
    assert result.mismatch is None


def test_without_logged_ids_targets_come_from_the_model() -> None:
    multi = instance_targets(
        endpoint="ep", variant="blue", instance=INSTANCE, containers=["step-0", "step-1"]
    )
    assert [t.container for t in multi.targets] == ["step-0", "step-1"]
    assert {t.source for t in multi.targets} == {SOURCE_MODEL}
    single = instance_targets(endpoint="ep", variant="blue", instance=INSTANCE, containers=None)
    assert [t.target for t in single.targets] == [f"sagemaker-endpoint:ep_blue_{INSTANCE}"]


def test_a_log_that_disagrees_with_the_model_wins_and_is_reported() -> None:
    result = instance_targets(
        endpoint="ep",
        variant="blue",
        instance=INSTANCE,
        containers=["step-0", "step-1"],
        logged_ids=[f"sagemaker-endpoint:ep_blue_{INSTANCE}_container_0"],
    )
    assert [t.container for t in result.targets] == ["container_0"]
    assert result.mismatch is not None
    assert "step-0" in result.mismatch


def test_container_prefixes_unknown_to_the_model_are_reported() -> None:
    result = instance_targets(
        endpoint="ep",
        variant="blue",
        instance=INSTANCE,
        containers=["step-0", "step-1"],
        logged_containers={"container_0"},
    )
    assert result.mismatch is not None
    assert [t.container for t in result.targets] == ["step-0", "step-1"]


# --- the published value ----------------------------------------------------------------------


def _targets(instances: int, containers: int) -> tuple[Target, ...]:
    out = []
    for n in range(instances):
        instance = f"i-{n:017x}"
        for c in range(containers):
            container = f"container_{c}"
            out.append(
                Target(
                    "blue",
                    instance,
                    container,
                    build_target_id("fraud-detector-dev", "blue", instance, container),
                )
            )
    return tuple(out)


def _doc(targets: tuple[Target, ...]) -> TargetsDocument:
    return TargetsDocument("fraud-detector-dev", targets, updated="2026-12-03T16:30:00Z")


def test_a_small_set_is_one_standard_parameter_readable_as_json() -> None:
    plan = layout(PREFIX, _doc(_targets(2, 2)))
    (write,) = plan.writes
    assert write.name == f"{PREFIX}/fraud-detector-dev"
    assert write.tier == STANDARD_TIER
    value = json.loads(write.value)
    assert value["endpoint"] == "fraud-detector-dev"
    assert value["targets"][0] == {
        "variant": "blue",
        "instance": "i-00000000000000000",
        "container": "container_0",
        "target": "sagemaker-endpoint:fraud-detector-dev_blue_i-00000000000000000_container_0",
        "source": "log",
    }


def test_a_value_over_4_kb_goes_to_the_advanced_tier() -> None:
    # GIVEN enough targets for more than 4 KB but less than 8 KB
    doc = _doc(_targets(12, 2))
    (write,) = layout(PREFIX, doc).writes
    assert STANDARD_VALUE_LIMIT < len(write.value.encode()) <= ADVANCED_VALUE_LIMIT
    assert write.tier == ADVANCED_TIER
    assert decode(write.value).targets == doc.targets


def test_a_value_over_8_kb_is_split_into_standard_parts() -> None:
    # GIVEN 40 instances with 3 containers each (far above 8 KB)
    doc = _doc(_targets(40, 3))
    plan = layout(PREFIX, doc)
    # THEN every parameter fits the standard tier and the main one is written last
    assert all(len(w.value.encode()) <= STANDARD_VALUE_LIMIT for w in plan.writes)
    assert {w.tier for w in plan.writes} == {STANDARD_TIER}
    assert plan.writes[-1].name == f"{PREFIX}/fraud-detector-dev"
    assert plan.part_names[0] == f"{PREFIX}/fraud-detector-dev/part-1"
    # AND reading the parts back gives the whole set
    parts = {n: w.value for n, w in enumerate(plan.writes[:-1], start=1)}
    assert decode(plan.writes[-1].value, parts).targets == doc.targets


def test_parts_of_two_different_writes_are_a_torn_read() -> None:
    first = layout(PREFIX, _doc(_targets(40, 3)))
    second = layout(PREFIX, _doc(_targets(41, 3)))
    parts = {n: w.value for n, w in enumerate(first.writes[:-1], start=1)}
    parts[2] = second.writes[1].value
    with pytest.raises(TornReadError):
        decode(first.writes[-1].value, parts)
    with pytest.raises(TornReadError):
        decode(first.writes[-1].value, {})


def test_parts_no_longer_used_are_stale() -> None:
    big = layout(PREFIX, _doc(_targets(40, 3)))
    small = layout(PREFIX, _doc(_targets(1, 1)))
    assert stale_names(big.names, small) == sorted(big.part_names)
    assert stale_names(small.names, big) == []


def test_parameter_names_map_back_to_endpoints() -> None:
    assert endpoint_of(PREFIX, f"{PREFIX}/ep") == ("ep", None)
    assert endpoint_of(PREFIX, f"{PREFIX}/ep/part-3") == ("ep", 3)
    assert endpoint_of(PREFIX, f"{PREFIX}/ep/other") is None
    assert endpoint_of(PREFIX, "/elsewhere/ep") is None


@pytest.mark.parametrize(
    "value", ["not json", "[]", '{"targets": []}', '{"endpoint": "e", "parts": -1}']
)
def test_unreadable_values_are_errors(value: str) -> None:
    with pytest.raises(TargetError):
        decode(value)


def test_choose_narrows_by_each_option() -> None:
    targets = _targets(2, 2)
    assert len(choose(targets)) == 4
    assert len(choose(targets, container="container_1")) == 2
    chosen = choose(targets, instance="i-00000000000000001", container="container_0")
    assert [t.target for t in chosen] == [
        "sagemaker-endpoint:fraud-detector-dev_blue_i-00000000000000001_container_0"
    ]
    assert choose(targets, variant="green") == []
