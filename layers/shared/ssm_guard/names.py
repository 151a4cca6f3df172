"""SageMaker resource names: what is valid, and how to tell a name from an ARN."""

from __future__ import annotations

import re

# SageMaker endpoint, endpoint-config and model names (botocore model: EndpointName).
SAGEMAKER_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_NAME_LENGTH = 63
_SHOWN_CHARS = 80


class InvalidNameError(ValueError):
    """A string that is not a valid SageMaker resource name."""


def validate_name(name: object, what: str = "endpoint name") -> str:
    """Return `name` when it is a valid SageMaker name, else raise InvalidNameError.

    Names are checked before they reach a log line, a parameter name or a policy.
    """
    if not isinstance(name, str) or not SAGEMAKER_NAME_RE.match(name):
        if not isinstance(name, str):
            shown = f"of type {type(name).__name__}"
        elif len(name) <= _SHOWN_CHARS:
            shown = repr(name)
        else:  # cut short: a hostile name must not fill a log line
            shown = f"{name[:_SHOWN_CHARS]!r}... ({len(name)} characters)"
        raise InvalidNameError(
            f"{what} {shown} is not a valid SageMaker name "
            "(1-63 letters, digits and hyphens, starting with a letter or digit)"
        )
    return name
