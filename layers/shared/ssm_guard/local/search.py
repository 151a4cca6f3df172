"""SageMaker `Search` over endpoint records: filters, sub-expressions, sorting and paging.

moto 5.2.5 returns every match in one page and stops evaluating at the first tag filter
(local-aws-notes.md); AWS pages at most 100 per call and honours every filter. Records are the
plain dicts of `Search(Resource="Endpoint")` results.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

ENDPOINT_PROPERTIES = frozenset(
    {
        "EndpointName",
        "EndpointArn",
        "EndpointConfigName",
        "ProductionVariants",
        "DataCaptureConfig",
        "EndpointStatus",
        "FailureReason",
        "CreationTime",
        "LastModifiedTime",
        "MonitoringSchedules",
        "Tags",
        "ShadowProductionVariants",
    }
)
DEFAULT_MAX_RESULTS = 10
MAX_RESULTS = 100


class SearchError(ValueError):
    """A request AWS would answer with ValidationException."""


def _values(record: Mapping[str, Any], name: str) -> list[Any]:
    """Every value at the dotted path `name`; lists along the way fan out."""
    if name.startswith("Tags."):
        key = name[len("Tags.") :]
        return [tag.get("Value") for tag in record.get("Tags") or [] if tag.get("Key") == key]
    if name.split(".")[0] not in ENDPOINT_PROPERTIES:
        raise SearchError(f"Unknown property name: {name}")
    nodes: list[Any] = [record]
    for part in name.split("."):
        found: list[Any] = []
        for node in nodes:
            items = node if isinstance(node, list) else [node]
            found += [item[part] for item in items if isinstance(item, dict) and part in item]
        nodes = found
    flat: list[Any] = []
    for node in nodes:
        flat += node if isinstance(node, list) else [node]
    return [value for value in flat if value is not None]


def _coerce(expected: str, actual: Any) -> Any:
    if isinstance(actual, datetime):
        try:
            moment = datetime.fromtimestamp(float(expected), UTC)
        except ValueError:
            moment = datetime.fromisoformat(expected.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(actual, bool):
        return expected.lower() == "true"
    if isinstance(actual, int | float):
        return float(expected)
    return expected


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _compare(actual: Any, operator: str, expected: str) -> bool:
    actual = _aware(actual)
    try:
        wanted = _coerce(expected, actual)
    except ValueError as exc:
        raise SearchError(f"Invalid value {expected!r} for the filter") from exc
    if operator == "Equals":
        return bool(actual == wanted)
    if operator == "NotEquals":
        return bool(actual != wanted)
    if operator == "Contains":
        return isinstance(actual, str) and str(wanted) in actual
    if operator == "In":
        return str(actual) in [item.strip() for item in expected.split(",")]
    ordering = {
        "GreaterThan": lambda a, b: a > b,
        "GreaterThanOrEqualTo": lambda a, b: a >= b,
        "LessThan": lambda a, b: a < b,
        "LessThanOrEqualTo": lambda a, b: a <= b,
    }
    if operator not in ordering:
        raise SearchError(f"Unsupported operator: {operator}")
    try:
        return bool(ordering[operator](actual, wanted))
    except TypeError:
        return False


def filter_matches(record: Mapping[str, Any], search_filter: Mapping[str, Any]) -> bool:
    name = search_filter["Name"]
    operator = search_filter.get("Operator", "Equals")
    values = _values(record, name)
    if operator == "Exists":
        return bool(values)
    if operator == "NotExists":
        return not values
    expected = search_filter.get("Value")
    if expected is None:
        raise SearchError(f"A value is required for the operator {operator}")
    if operator == "NotEquals":
        return all(_compare(value, "NotEquals", expected) for value in values)
    return any(_compare(value, operator, expected) for value in values)


def expression_matches(record: Mapping[str, Any], expression: Mapping[str, Any] | None) -> bool:
    """A SearchExpression: Filters, NestedFilters and SubExpressions joined by Operator."""
    if not expression:
        return True
    results = [filter_matches(record, item) for item in expression.get("Filters") or []]
    for nested in expression.get("NestedFilters") or []:
        items = _values(record, nested["NestedPropertyName"])
        prefix = nested["NestedPropertyName"] + "."
        results.append(
            any(
                all(_nested_filter_matches(item, f, prefix) for f in nested.get("Filters") or [])
                for item in items
            )
        )
    results += [expression_matches(record, sub) for sub in expression.get("SubExpressions") or []]
    if expression.get("Operator", "And") == "Or":
        return any(results)
    return all(results)


def _nested_filter_matches(item: Any, search_filter: Mapping[str, Any], prefix: str) -> bool:
    path = search_filter["Name"].removeprefix(prefix).split(".")
    values = [item]
    for part in path:
        values = [value[part] for value in values if isinstance(value, dict) and part in value]
    operator = search_filter.get("Operator", "Equals")
    if operator == "Exists":
        return bool(values)
    if operator == "NotExists":
        return not values
    return any(_compare(value, operator, search_filter.get("Value", "")) for value in values)


def _sort_key(record: Mapping[str, Any], sort_by: str) -> tuple[int, Any]:
    values = _values(record, sort_by)
    if not values:
        return (1, "")
    value = _aware(values[0])
    return (0, value.timestamp() if isinstance(value, datetime) else value)


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str) -> int:
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise SearchError("Invalid pagination token") from exc
    if offset < 0:
        raise SearchError("Invalid pagination token")
    return offset


def search(
    records: Sequence[Mapping[str, Any]],
    *,
    expression: Mapping[str, Any] | None = None,
    sort_by: str | None = None,
    sort_order: str | None = None,
    next_token: str | None = None,
    max_results: int | None = None,
    result_name: str = "Endpoint",
) -> dict[str, Any]:
    """One page of `Search` results, with `NextToken` when more remain and `TotalHits`."""
    size = DEFAULT_MAX_RESULTS if max_results is None else int(max_results)
    if not 1 <= size <= MAX_RESULTS:
        raise SearchError(
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value less than or equal to {MAX_RESULTS}"
        )
    matches = [record for record in records if expression_matches(record, expression)]
    key = sort_by or "LastModifiedTime"
    matches.sort(key=lambda record: _sort_key(record, key), reverse=sort_order != "Ascending")
    if (sort_order or "Descending") == "Descending":
        # Records without the sort property still go last.
        matches.sort(key=lambda record: _sort_key(record, key)[0])
    offset = decode_token(next_token) if next_token else 0
    page = matches[offset : offset + size]
    result: dict[str, Any] = {
        "Results": [{result_name: dict(record)} for record in page],
        "TotalHits": {"Value": len(matches), "Relation": "EqualTo"},
    }
    if offset + size < len(matches):
        result["NextToken"] = encode_token(offset + size)
    return result
