"""SageMaker Search over endpoint records, as the local emulator answers it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ssm_guard.local import search

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)


def record(index: int, **tags: str) -> dict[str, Any]:
    return {
        "EndpointName": f"ep-{index:03d}",
        "EndpointStatus": "InService" if index % 2 else "Creating",
        "CreationTime": (START + timedelta(minutes=index)).replace(tzinfo=None),
        "LastModifiedTime": START + timedelta(minutes=200 - index),
        "ProductionVariants": [{"VariantName": "a", "CurrentInstanceCount": index}],
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


RECORDS = [record(i, team="a" if i < 3 else "b", env="prod") for i in range(7)]


def names(result: dict[str, Any]) -> list[str]:
    return [item["Endpoint"]["EndpointName"] for item in result["Results"]]


def test_results_page_until_the_token_runs_out() -> None:
    pages, token = [], None
    while True:
        result = search.search(
            RECORDS, sort_by="CreationTime", sort_order="Ascending", max_results=3, next_token=token
        )
        pages.append(names(result))
        assert result["TotalHits"] == {"Value": 7, "Relation": "EqualTo"}
        token = result.get("NextToken")
        if token is None:
            break
    assert pages == [["ep-000", "ep-001", "ep-002"], ["ep-003", "ep-004", "ep-005"], ["ep-006"]]


def test_default_order_is_last_modified_descending_ten_per_page() -> None:
    many = [record(i) for i in range(12)]
    result = search.search(many)
    assert len(result["Results"]) == 10
    assert names(result)[0] == "ep-000"  # modified last
    assert "NextToken" in result


def test_every_filter_applies_after_a_tag_filter() -> None:
    expression = {
        "Filters": [
            {"Name": "Tags.env", "Operator": "Equals", "Value": "prod"},
            {"Name": "Tags.team", "Operator": "Equals", "Value": "a"},
            {"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"},
        ]
    }
    assert sorted(names(search.search(RECORDS, expression=expression))) == ["ep-001"]


def test_sub_expressions_or_and_nested_properties() -> None:
    expression = {
        "SubExpressions": [
            {"Filters": [{"Name": "EndpointName", "Operator": "Equals", "Value": "ep-006"}]},
            {
                "Filters": [
                    {
                        "Name": "ProductionVariants.CurrentInstanceCount",
                        "Operator": "LessThan",
                        "Value": "1",
                    }
                ]
            },
        ],
        "Operator": "Or",
    }
    assert sorted(names(search.search(RECORDS, expression=expression))) == ["ep-000", "ep-006"]


def test_contains_exists_and_time_comparisons() -> None:
    after = (START + timedelta(minutes=4, seconds=30)).isoformat()
    expression = {
        "Filters": [
            {"Name": "EndpointName", "Operator": "Contains", "Value": "ep-00"},
            {"Name": "Tags.team", "Operator": "Exists"},
            {"Name": "Tags.missing", "Operator": "NotExists"},
            {"Name": "CreationTime", "Operator": "GreaterThan", "Value": after},
        ]
    }
    assert sorted(names(search.search(RECORDS, expression=expression))) == ["ep-005", "ep-006"]


def test_nested_filters_match_within_one_element() -> None:
    expression = {
        "NestedFilters": [
            {
                "NestedPropertyName": "ProductionVariants",
                "Filters": [
                    {"Name": "ProductionVariants.VariantName", "Operator": "Equals", "Value": "a"},
                    {
                        "Name": "ProductionVariants.CurrentInstanceCount",
                        "Operator": "Equals",
                        "Value": "2",
                    },
                ],
            }
        ]
    }
    assert names(search.search(RECORDS, expression=expression)) == ["ep-002"]


@pytest.mark.parametrize("size", [0, 101])
def test_page_size_is_between_1_and_100(size: int) -> None:
    with pytest.raises(search.SearchError, match="maxResults"):
        search.search(RECORDS, max_results=size)


def test_unknown_properties_and_bad_tokens_are_refused() -> None:
    with pytest.raises(search.SearchError, match="Unknown property name: Nope"):
        search.search(RECORDS, expression={"Filters": [{"Name": "Nope", "Value": "x"}]})
    with pytest.raises(search.SearchError, match="pagination token"):
        search.search(RECORDS, next_token="not-a-token")
