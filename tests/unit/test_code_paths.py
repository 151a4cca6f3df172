"""The code-path scan behind the permission test: what it finds, and what it refuses to guess."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _code_paths import CodeIndex

pytestmark = pytest.mark.unit

SERVICES = frozenset({"sagemaker", "iam", "ssm", "sns"})

CLIENTS = """
from __future__ import annotations
from typing import TYPE_CHECKING, Any
import boto3
if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

def client(service: str) -> Any:
    return boto3.client(service)

def ssm() -> SSMClient:
    return client("ssm")
"""

ADAPTER = """
from __future__ import annotations
import functools
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_iam import IAMClient

def describe(client: SageMakerClient, name: str) -> dict:
    return client.describe_endpoint(EndpointName=name)

def tags(client: SageMakerClient, arn: str) -> list:
    return list(client.get_paginator("list_tags").paginate(ResourceArn=arn))

def attach(client: IAMClient, role: str) -> None:
    call = functools.partial(client.attach_role_policy, RoleName=role, PolicyArn="p")
    call()

def never_called(client: SageMakerClient) -> None:
    client.delete_endpoint(EndpointName="x")
"""

WORK = """
from __future__ import annotations
from dataclasses import dataclass
from typing import Any
from pkg import clients
from pkg.aws import sm as sm_api

@dataclass
class Guard:
    sagemaker: Any
    def client(self, service: str) -> Any:
        return clients.client(service)

def read(guard: Guard, name: str) -> dict:
    return sm_api.describe(guard.sagemaker, name)

def publish(guard: Guard) -> None:
    from pkg.aws import sm as lazily
    lazily.tags(guard.sagemaker, "arn")
    guard.client("sns").publish(TopicArn="t", Message="m")
    clients.ssm().put_parameter(Name="/a", Value="b")

def unknown(thing: Any) -> None:
    thing.get_parameter(Name="/a")

HANDLERS = {"publish": publish}

def dispatch(kind: str, guard: Guard) -> None:
    HANDLERS[kind](guard)
"""

APP = """
from pkg.work import read, dispatch

def lambda_handler(event, context):
    read(None, event["name"])
    dispatch("publish", None)
"""

OTHER_APP = """
from pkg.aws.sm import attach

def lambda_handler(event, context):
    attach(None, "role")
"""


@pytest.fixture
def index(tmp_path: Path) -> CodeIndex:
    package = tmp_path / "pkg"
    (package / "aws").mkdir(parents=True)
    files = {
        package / "__init__.py": "",
        package / "aws" / "__init__.py": "",
        package / "clients.py": CLIENTS,
        package / "aws" / "sm.py": ADAPTER,
        package / "work.py": WORK,
        tmp_path / "app.py": APP,
        tmp_path / "other.py": OTHER_APP,
    }
    for path, text in files.items():
        path.write_text(textwrap.dedent(text))
    extra = {"functions.a.app": tmp_path / "app.py", "functions.b.app": tmp_path / "other.py"}
    return CodeIndex(SERVICES, extra, package_dir=package)


def operations(index: CodeIndex, module: str) -> set[tuple[str, str]]:
    return set(index.operations_from([module, f"{module}.lambda_handler"], {}))


def test_the_scan_follows_a_handler_to_each_client_call(index) -> None:
    # WHEN the first handler's code path is read
    found = operations(index, "functions.a.app")
    # THEN calls through typed clients, paginators, lazy imports, guard.client("x"),
    # client factories and a dispatch table are all found, and nothing else
    assert found == {
        ("sagemaker", "DescribeEndpoint"),
        ("sagemaker", "ListTags"),
        ("sns", "Publish"),
        ("ssm", "PutParameter"),
    }


def test_each_function_gets_only_its_own_path(index) -> None:
    # functools.partial(client.attach_role_policy) counts; the other handler's calls do not
    assert operations(index, "functions.b.app") == {("iam", "AttachRolePolicy")}


def test_an_operation_on_a_client_of_unknown_service_is_reported_not_guessed(index) -> None:
    assert [(u.method, u.services) for u in index.unattributed] == [("get_parameter", ("ssm",))]
