"""Telling AWS errors apart: what a retry can fix and what it cannot."""

from __future__ import annotations

from botocore.exceptions import ClientError

NOT_FOUND_CODES = frozenset(
    {"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity", "ParameterNotFound"}
)
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "TooManyUpdates",
    }
)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    return str(exc)


def is_not_found(exc: BaseException) -> bool:
    """SageMaker says a missing endpoint with a ValidationException ("Could not find ...")."""
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return True
    return code == "ValidationException" and "could not find" in error_message(exc).lower()


def is_in_progress(exc: BaseException) -> bool:
    """UpdateEndpoint on an endpoint that is creating or updating (aws-facts 2.3)."""
    message = error_message(exc).lower()
    return error_code(exc) == "ValidationException" and "in-progress" in message


def is_throttling(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING_CODES or "rate exceeded" in error_message(exc).lower()


def is_access_denied(exc: BaseException) -> bool:
    code = error_code(exc)
    return code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
