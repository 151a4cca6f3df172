"""Does the local AWS page results as AWS does? Call counts on an emulator that returns
everything in one page would flatter the guard.

AWS (botocore service models): `Search` and `ListEndpoints` take MaxResults 1-100,
`DescribeLogStreams` takes limit 1-50 (50 by default); larger values are a ValidationException.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

LOG_GROUP = "/aws/sagemaker/Endpoints/bench-paging"
LOG_STREAMS = 60
_NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def _rejects(call: Any, **kwargs: Any) -> bool:
    """True when the service refuses the request (as AWS does beyond its page limit)."""
    try:
        call(**kwargs)
    except ClientError:
        return True
    return False


def _first_page(items: list[Any], token: object, limit: int, total: int) -> dict[str, Any]:
    return {
        "page_size": len(items),
        "limit": limit,
        "has_next_token": bool(token),
        "pages_like_aws": len(items) <= limit and (bool(token) or total <= limit),
    }


def check(total_endpoints: int) -> dict[str, Any]:
    """Page sizes of the first page of each call, on an account of `total_endpoints`."""
    sagemaker = boto3.client("sagemaker", config=_NO_RETRY)
    logs = boto3.client("logs", config=_NO_RETRY)

    listed = sagemaker.list_endpoints(MaxResults=100)
    found = sagemaker.search(Resource="Endpoint", MaxResults=100)
    default_search = sagemaker.search(Resource="Endpoint")

    logs.create_log_group(logGroupName=LOG_GROUP)
    for i in range(LOG_STREAMS):
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=f"main/i-{i:017x}/ssm")
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix="main/")
    results = {
        "endpoints": total_endpoints,
        "ListEndpoints": {
            **_first_page(listed["Endpoints"], listed.get("NextToken"), 100, total_endpoints),
            "rejects_over_100": _rejects(sagemaker.list_endpoints, MaxResults=101),
        },
        "Search": {
            **_first_page(found["Results"], found.get("NextToken"), 100, total_endpoints),
            "rejects_over_100": _rejects(sagemaker.search, Resource="Endpoint", MaxResults=101),
            "default_page_size": len(default_search["Results"]),
        },
        "DescribeLogStreams": {
            **_first_page(streams["logStreams"], streams.get("nextToken"), 50, LOG_STREAMS),
            "rejects_over_50": _rejects(
                logs.describe_log_streams, logGroupName=LOG_GROUP, limit=51
            ),
        },
    }
    logs.delete_log_group(logGroupName=LOG_GROUP)
    results["all_like_aws"] = all(
        v["pages_like_aws"] for v in results.values() if isinstance(v, dict)
    )
    return results
