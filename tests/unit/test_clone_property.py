"""The faithful copy, proven: endpoint configs built by hypothesis from botocore's own
CreateEndpointConfig input shape (every member and nested member) are copied with nothing changed
but the name and EnableSSMAccess, and botocore accepts the copy."""

from __future__ import annotations

import copy
import string
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssm_guard.clone import (
    CREATED_BY_TAG,
    SOURCE_CONFIG_TAG,
    clone_with_ssm,
    clone_without_ssm,
    is_guard_config_name,
    ssm_capable,
)
from ssm_guard.names import SAGEMAKER_NAME_RE

pytestmark = pytest.mark.unit

MODEL = botocore.session.get_session().get_service_model("sagemaker")
CREATE = MODEL.operation_model("CreateEndpointConfig").input_shape
VARIANT_LISTS = ("ProductionVariants", "ShadowProductionVariants")
TEXT = string.ascii_letters + string.digits + "-_./:"
MAX_LIST = 3


def _text(shape: Shape) -> st.SearchStrategy[str]:
    enum = shape.metadata.get("enum")
    if enum:
        return st.sampled_from(enum)
    low = shape.metadata.get("min", 0)
    high = min(shape.metadata.get("max", 40), max(low, 40))
    return st.text(TEXT, min_size=low, max_size=high)


def _integer(shape: Shape) -> st.SearchStrategy[int]:
    low = shape.metadata.get("min", -(2**31))
    return st.integers(min_value=low, max_value=shape.metadata.get("max", max(low, 0) + 100_000))


def strategy(shape: Shape, *, full: bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value of `shape`. `full`: every optional member is present, at every depth."""
    kind = shape.type_name
    if kind == "structure":
        members = {k: v for k, v in shape.members.items() if not (depth == 0 and k == "Tags")}
        required = {
            k: strategy(v, full=full, depth=depth + 1)
            for k, v in members.items()
            if full or k in shape.required_members
        }
        optional = {
            k: strategy(v, full=full, depth=depth + 1)
            for k, v in members.items()
            if not full and k not in shape.required_members
        }
        built = st.fixed_dictionaries(required, optional=optional)
        # An empty structure is the API's "absent" (and botocore refuses some); keep one member.
        return built.filter(bool)
    if kind == "list":
        # NOTE: a list the model lets be empty (min 0) is drawn non-empty here: the copy treats
        # an empty list as absent (test_an_empty_list_the_model_allows_is_kept below).
        low = max(1, shape.metadata.get("min", 0))
        high = max(low, min(shape.metadata.get("max", MAX_LIST), MAX_LIST))
        return st.lists(
            strategy(shape.member, full=full, depth=depth + 1), min_size=low, max_size=high
        )
    if kind == "map":
        return st.dictionaries(
            _text(shape.key),
            strategy(shape.value, full=full, depth=depth + 1),
            min_size=1,
            max_size=3,
        )
    if kind == "string":
        return _text(shape)
    if kind in ("integer", "long"):
        return _integer(shape)
    if kind in ("float", "double"):
        low = shape.metadata.get("min", -1e6)
        return st.floats(min_value=low, max_value=low + 1e6, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"CreateEndpointConfig grew a {kind} member: teach this test its shape")


def configs(*, full: bool) -> st.SearchStrategy[dict[str, Any]]:
    name = st.from_regex(SAGEMAKER_NAME_RE, fullmatch=True)
    return st.builds(
        lambda body, n: {**body, "EndpointConfigName": n}, strategy(CREATE, full=full), name
    )


TAGS = st.dictionaries(
    st.one_of(st.text(TEXT, min_size=1, max_size=20), st.just("aws:cloudformation:stack-name")),
    st.text(TEXT, max_size=30),
    max_size=5,
)


def _described(source: dict[str, Any]) -> dict[str, Any]:
    """What DescribeEndpointConfig returns for it: the same content plus the config's identity."""
    name = source["EndpointConfigName"]
    return {
        **copy.deepcopy(source),
        "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}",
        "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
    }


def _switched(source: dict[str, Any], *, enable: bool) -> dict[str, Any]:
    """The source as the copy should read: EnableSSMAccess false where it was set (off), or
    true on every variant that can take SSM (on)."""
    expected = copy.deepcopy(source)
    for key in VARIANT_LISTS:
        for variant in expected.get(key, []):
            if enable and ssm_capable(variant):
                variant["EnableSSMAccess"] = True
            elif not enable and "EnableSSMAccess" in variant:
                variant["EnableSSMAccess"] = False
    return expected


def _check(source: dict[str, Any], tags: dict[str, str], *, enable: bool) -> None:
    clone = clone_with_ssm if enable else clone_without_ssm
    kwargs = clone(_described(source), tags)
    # The copy differs from the source in its name and EnableSSMAccess, nothing else.
    copied = {k: v for k, v in kwargs.items() if k not in ("EndpointConfigName", "Tags")}
    expected = {k: v for k, v in _switched(source, enable=enable).items()}
    expected.pop("EndpointConfigName")
    assert copied == expected
    assert kwargs["EndpointConfigName"] != source["EndpointConfigName"]
    assert is_guard_config_name(kwargs["EndpointConfigName"])
    # Its tags are the source's (AWS-reserved keys cannot be set) plus the guard's marks.
    copied_tags = {t["Key"]: t["Value"] for t in kwargs["Tags"]}
    kept = {k: v for k, v in tags.items() if not k.lower().startswith("aws:")}
    assert {k: copied_tags[k] for k in kept} == kept
    assert copied_tags[SOURCE_CONFIG_TAG] == source["EndpointConfigName"]
    assert CREATED_BY_TAG in copied_tags
    # And botocore accepts it as CreateEndpointConfig input.
    report = ParamValidator().validate(kwargs, CREATE)
    assert not report.has_errors(), report.generate_report()


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(source=configs(full=False), tags=TAGS)
def test_copy_without_ssm_is_faithful(source, tags) -> None:
    _check(source, tags, enable=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=configs(full=True), tags=TAGS)
def test_copy_of_a_config_using_every_member_is_faithful(source, tags) -> None:
    _check(source, tags, enable=False)


@SETTINGS
@given(source=configs(full=False), tags=TAGS)
def test_copy_with_ssm_is_faithful(source, tags) -> None:
    _check(source, tags, enable=True)


def test_the_full_strategy_really_sets_every_member() -> None:
    # GIVEN one config drawn with every member present
    @given(configs(full=True))
    @settings(max_examples=1, deadline=None)
    def draw(source: dict[str, Any]) -> None:
        found.append(source)

    found: list[dict[str, Any]] = []
    draw()

    # THEN every member of the input shape, at every depth, is in it (Tags go separately)
    def missing(shape: Shape, value: Any, path: str) -> list[str]:
        if shape.type_name == "structure":
            gaps = []
            for key, member in shape.members.items():
                if path == "" and key == "Tags":
                    continue
                if key not in value:
                    gaps.append(f"{path}{key}")
                else:
                    gaps += missing(member, value[key], f"{path}{key}.")
            return gaps
        if shape.type_name == "list" and value:
            return missing(shape.member, value[0], path)
        return []

    assert missing(CREATE, found[0], "") == []


def test_an_empty_list_the_model_allows_is_kept() -> None:
    source = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {"VariantName": "v", "AcceleratorPartitionLayouts": [{"AcceleratorPartitionTypes": []}]}
        ],
    }
    _check(source, {}, enable=False)
