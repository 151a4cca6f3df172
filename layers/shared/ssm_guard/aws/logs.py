"""Reading an endpoint's CloudWatch log streams: the SSM agent streams `VARIANT/INSTANCE/ssm` and
the container streams `VARIANT/INSTANCE[/CONTAINER]`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ssm_guard.aws.errors import error_code
from ssm_guard.targets import LogStream

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

STREAMS_PAGE_SIZE = 50
"""DescribeLogStreams returns at most 50 streams a page (botocore logs model)."""
HEAD_EVENTS = 100
HEAD_PAGES = 3


def log_group_names(endpoint: str) -> tuple[str, str]:
    """SageMaker writes `/aws/sagemaker/Endpoints/NAME`; the SSM page spells it with a lower-case
    `endpoints`. Log group names are case-sensitive, so both are tried, the documented one first
    (aws-facts 5)."""
    return (f"/aws/sagemaker/Endpoints/{endpoint}", f"/aws/sagemaker/endpoints/{endpoint}")


@dataclass(frozen=True)
class LogEvent:
    timestamp_ms: int
    message: str


class LogGroupMissingError(LookupError):
    """Neither spelling of the endpoint's log group exists."""


def _stream(raw: Any) -> LogStream:
    return LogStream(
        name=str(raw["logStreamName"]),
        created_ms=int(raw.get("creationTime") or 0),
        last_event_ms=raw.get("lastEventTimestamp"),
        last_ingestion_ms=raw.get("lastIngestionTime"),
    )


def _is_missing_group(exc: ClientError) -> bool:
    return error_code(exc) == "ResourceNotFoundException"


def describe_streams(client: CloudWatchLogsClient, group: str, prefix: str) -> list[LogStream]:
    """Every stream of `group` whose name starts with `prefix` (all when empty), all pages."""
    streams: list[LogStream] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "limit": STREAMS_PAGE_SIZE}
    if prefix:
        kwargs["logStreamNamePrefix"] = prefix
    while True:
        page = client.describe_log_streams(**kwargs)
        streams.extend(_stream(raw) for raw in page.get("logStreams", []))
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return streams
        kwargs["nextToken"] = token


def endpoint_streams(
    client: CloudWatchLogsClient, endpoint: str, prefixes: Iterable[str]
) -> tuple[str, dict[str, list[LogStream]]]:
    """The endpoint's log group and its streams under each prefix (e.g. `VARIANT/`).

    Raises LogGroupMissingError when the endpoint has no log group under either spelling.
    """
    wanted = list(dict.fromkeys(prefixes))
    for group in log_group_names(endpoint):
        try:
            found = {prefix: describe_streams(client, group, prefix) for prefix in wanted}
        except ClientError as exc:
            if _is_missing_group(exc):
                continue
            raise
        return group, found
    raise LogGroupMissingError(endpoint)


def head_events(
    client: CloudWatchLogsClient,
    group: str,
    stream: str,
    *,
    limit: int = HEAD_EVENTS,
    max_pages: int = HEAD_PAGES,
) -> list[LogEvent]:
    """The first events of a stream (where SageMaker lists the container target IDs).

    GetLogEvents may answer empty pages before the data; the forward token is followed until
    events come, the token repeats, or `max_pages` were read.
    """
    events: list[LogEvent] = []
    for raw in _pages(client, group, stream, limit=limit, max_pages=max_pages):
        events.extend(raw)
        if events:
            break
    return events[:limit]


def read_events(
    client: CloudWatchLogsClient, group: str, stream: str, *, limit: int
) -> list[LogEvent]:
    """Up to `limit` events of a stream from its start, across pages."""
    events: list[LogEvent] = []
    for raw in _pages(client, group, stream, limit=min(limit, 10_000), max_pages=None):
        events.extend(raw)
        if len(events) >= limit:
            break
    return events[:limit]


def _pages(
    client: CloudWatchLogsClient, group: str, stream: str, *, limit: int, max_pages: int | None
) -> Iterator[list[LogEvent]]:
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "logStreamName": stream,
        "startFromHead": True,
        "limit": limit,
    }
    pages = 0
    while max_pages is None or pages < max_pages:
        page = client.get_log_events(**kwargs)
        pages += 1
        yield [
            LogEvent(int(e.get("timestamp") or 0), str(e.get("message") or ""))
            for e in page.get("events", [])
        ]
        token = page.get("nextForwardToken")
        if not token or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token
