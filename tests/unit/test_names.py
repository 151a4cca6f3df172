"""SageMaker names: what the refusal says about a name it will not use."""

from __future__ import annotations

import pytest

from ssm_guard.names import InvalidNameError, validate_name

pytestmark = pytest.mark.unit


def test_a_long_name_is_shown_cut_short_with_its_length_not_as_its_type() -> None:
    """An on-call reading "endpoint name 'str' is not valid" looks for an endpoint named str."""
    with pytest.raises(InvalidNameError) as caught:
        validate_name("fraud-detector-" + "x" * 5000)
    message = str(caught.value)
    assert "'str'" not in message
    assert "fraud-detector-" in message
    assert "5015 characters" in message
    assert len(message) < 300


def test_a_name_that_is_not_a_string_is_named_by_its_type() -> None:
    with pytest.raises(InvalidNameError, match="endpoint name of type int"):
        validate_name(42)


def test_a_short_bad_name_is_shown_whole() -> None:
    with pytest.raises(InvalidNameError, match=r"endpoint name '\.\./etc' is not"):
        validate_name("../etc")
