"""The embedded local AWS under parallel requests, and its public request hook (what the
benchmark's request log listens with)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.sagemaker.models import sagemaker_backends

from ssm_guard.local.api import LocalAws, LocalAwsError

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/r"
ACCOUNT, REGION = "123456789012", "us-east-1"
CONFIGS = 40
PADDING = 200_000
"""Placeholder entries in the emulator's config table: each create of a new name looks the name
up across the whole table (names match case-insensitively), long enough for a parallel create
to insert meanwhile when the lookup is not under the emulator's lock."""


def _variant() -> dict[str, Any]:
    return {
        "VariantName": "v",
        "ModelName": "m",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }


def test_parallel_creates_of_configs_all_succeed_and_a_taken_name_is_refused() -> None:
    with LocalAws(delay=0) as aws:
        seen: list[str] = []
        aws.add_request_listener(lambda environ, _body: seen.append(environ["PATH_INFO"]))
        sagemaker = aws.client("sagemaker")
        sagemaker.create_model(
            ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"}
        )
        # GIVEN an account holding many configs (placeholders, put straight into the backend)
        table = sagemaker_backends[ACCOUNT][REGION].endpoint_configs
        padding = {f"placeholder-{i}": None for i in range(PADDING)}
        table.update(padding)
        seen.clear()

        def create(name: str) -> str:
            try:
                aws.client("sagemaker").create_endpoint_config(
                    EndpointConfigName=name, ProductionVariants=[_variant()]
                )
            except Exception as exc:  # the outcome of each request is the point
                return f"{type(exc).__name__}: {exc}"
            return "created"

        # WHEN 40 distinct configs and 8 copies of one more are created from 8 threads at once
        names = [f"parallel-{i}" for i in range(CONFIGS)] + ["same-name"] * 8
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(create, names))
        for name in padding:
            del table[name]

        # THEN every distinct name was created, and of the copies exactly one
        assert results[:CONFIGS] == ["created"] * CONFIGS
        copies = results[CONFIGS:]
        assert copies.count("created") == 1, copies
        assert all("already existing" in r for r in copies if r != "created"), copies
        listed = sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
        assert len(listed) == CONFIGS + 1
        # AND the listener saw every AWS request (the 48 creates and the listing), none of the
        # emulator's own control requests
        assert len(seen) == len(names) + 1


def test_a_request_listener_needs_the_emulator_in_this_process() -> None:
    aws = LocalAws()
    with pytest.raises(LocalAwsError):
        aws.add_request_listener(lambda environ, body: None)
