"""Parameter Store: reading, writing and deleting the published target parameters.

AWS behaviour this module follows (moto checks none of the first three):
- a value above 4 KB needs the advanced tier, and an advanced parameter cannot be turned back
  into a standard one (PutParameter says "You can't downgrade ..."): it stays advanced;
- tags can only be given when a parameter is created; `Overwrite` with tags is rejected;
- no labels: a labelled oldest version would block the rotation past 100 versions;
- Parameter Store throttles with `ThrottlingException: Rate exceeded` and answers concurrent
  writes with `TooManyUpdates`, which botocore does not retry: every call here is retried with
  exponential backoff and full jitter beyond botocore's own retries.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from ssm_guard.aws.errors import error_code, error_message, is_throttling
from ssm_guard.observability import logger
from ssm_guard.targets import ADVANCED_TIER, STANDARD_TIER, ParameterWrite

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

MANAGED_BY = "sagemaker-ssm-guard"
RETRY_ATTEMPTS = 6
RETRY_BASE_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
PATH_PAGE_SIZE = 10
"""GetParametersByPath returns at most 10 parameters a page."""
DELETE_BATCH = 10
"""DeleteParameters takes at most 10 names a call."""

T = TypeVar("T")
Sleep = Callable[[float], None]


def with_retries(
    call: Callable[[], T],
    *,
    operation: str,
    sleep: Sleep | None = None,
    attempts: int = RETRY_ATTEMPTS,
) -> T:
    """Run `call`, retrying throttling (`ThrottlingException`, `Rate exceeded`, `TooManyUpdates`)
    with exponential backoff and full jitter; any other error is raised at once."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ClientError as exc:
            if attempt == attempts or not is_throttling(exc):
                raise
            ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
            delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
            logger.info(
                "parameter store throttled, retrying",
                extra={
                    "operation": operation,
                    "error_code": error_code(exc),
                    "attempt": attempt,
                    "delay_seconds": round(delay, 3),
                },
            )
            (sleep or time.sleep)(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def get_value(client: SSMClient, name: str, *, sleep: Sleep | None = None) -> str | None:
    """The value of one parameter, or None when it does not exist."""
    try:
        answer = with_retries(
            functools.partial(client.get_parameter, Name=name),
            operation="GetParameter",
            sleep=sleep,
        )
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    return str(answer["Parameter"].get("Value", ""))


def get_tree(client: SSMClient, path: str, *, sleep: Sleep | None = None) -> dict[str, str]:
    """Every parameter below `path` (recursively), name -> value, all pages."""
    found: dict[str, str] = {}
    kwargs: dict[str, Any] = {"Path": path, "Recursive": True, "MaxResults": PATH_PAGE_SIZE}
    while True:
        page = with_retries(
            functools.partial(client.get_parameters_by_path, **kwargs),
            operation="GetParametersByPath",
            sleep=sleep,
        )
        for parameter in page.get("Parameters", []):
            found[str(parameter["Name"])] = str(parameter.get("Value", ""))
        token = page.get("NextToken")
        if not token:
            return found
        kwargs["NextToken"] = token


def _is_downgrade(exc: ClientError) -> bool:
    message = error_message(exc).lower()
    return error_code(exc) == "ValidationException" and "downgrade" in message


def put_value(
    client: SSMClient,
    write: ParameterWrite,
    *,
    exists: bool,
    tags: Mapping[str, str],
    description: str,
    sleep: Sleep | None = None,
) -> str:
    """Create (with tags) or overwrite (without) one parameter; returns the tier it has now.

    A parameter that AWS holds in the advanced tier stays there: asking for the standard tier is
    refused, so the write is repeated with the advanced tier.
    """
    tier = write.tier
    overwrite = exists
    for _ in range(3):
        kwargs: dict[str, Any] = {
            "Name": write.name,
            "Value": write.value,
            "Type": "String",
            "Tier": tier,
            "Description": description,
        }
        if overwrite:
            kwargs["Overwrite"] = True
        else:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        try:
            answer = with_retries(
                functools.partial(client.put_parameter, **kwargs),
                operation="PutParameter",
                sleep=sleep,
            )
        except ClientError as exc:
            if not overwrite and error_code(exc) == "ParameterAlreadyExists":
                overwrite = True
                continue
            if tier == STANDARD_TIER and _is_downgrade(exc):
                tier = ADVANCED_TIER
                continue
            raise
        return str(answer.get("Tier") or tier)
    raise RuntimeError(f"could not write parameter {write.name}")


def delete_names(
    client: SSMClient, names: Iterable[str], *, sleep: Sleep | None = None
) -> list[str]:
    """Delete parameters, ten a call; names that are already gone are not an error."""
    wanted = sorted(set(names))
    deleted: list[str] = []
    for start in range(0, len(wanted), DELETE_BATCH):
        batch = wanted[start : start + DELETE_BATCH]
        answer = with_retries(
            functools.partial(client.delete_parameters, Names=batch),
            operation="DeleteParameters",
            sleep=sleep,
        )
        deleted.extend(answer.get("DeletedParameters", []))
    return deleted
