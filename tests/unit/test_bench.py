"""The benchmark's own instruments (bench/): request parsing, the call counter, the account
shape and the document writer. The measurements themselves are never asserted here."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

# bench/ is a folder of scripts beside the product, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report  # noqa: E402
from bench.counting import counting  # noqa: E402
from bench.emulator import RequestLog, operation_of  # noqa: E402
from bench.fixture import Shape  # noqa: E402

pytestmark = pytest.mark.unit

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=bench-fixture/20260101/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def _environ(service: str, **extra: Any) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": SIGNED.format(service=service), "PATH_INFO": "/", **extra}


def test_json_protocol_operation_comes_from_the_target_header() -> None:
    # GIVEN a SageMaker request (JSON protocol)
    environ = _environ("sagemaker", HTTP_X_AMZ_TARGET="SageMaker.DescribeEndpoint")
    # WHEN it is parsed
    # THEN the caller, the service and the operation are named
    assert operation_of(environ, b"{}") == ("bench-fixture", "sagemaker", "DescribeEndpoint")


def test_query_protocol_operation_comes_from_the_action_field() -> None:
    body = b"Action=ListAttachedRolePolicies&Version=2010-05-08&RoleName=r"
    assert operation_of(_environ("iam"), body) == (
        "bench-fixture",
        "iam",
        "ListAttachedRolePolicies",
    )


def test_rest_protocol_operation_is_method_and_path() -> None:
    environ = _environ("lambda", REQUEST_METHOD="POST", PATH_INFO="/2015-03-31/functions/f")
    assert operation_of(environ, b"") == ("bench-fixture", "lambda", "POST /2015-03-31/functions")


def test_request_log_counts_each_caller_apart_and_hands_the_body_on() -> None:
    # GIVEN an app behind the log that reads the request body
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read())
        return [b""]

    log = RequestLog(app)
    body = b"Action=GetAccountSummary"
    # WHEN two callers and an unsigned request go through it
    for caller in ("testing", "bench-custodian"):
        environ = _environ("iam", CONTENT_LENGTH=str(len(body)), **{"wsgi.input": io.BytesIO(body)})
        environ["HTTP_AUTHORIZATION"] = environ["HTTP_AUTHORIZATION"].replace(
            "bench-fixture", caller
        )
        log(environ, lambda *_: None)
    log({"PATH_INFO": "/moto-api/reset", "wsgi.input": io.BytesIO(b"")}, lambda *_: None)
    # THEN each signed request is counted once, under its caller, and the app still got the body
    assert log.since(0, caller="testing") == {"iam:GetAccountSummary": 1}
    assert log.since(0) == {"iam:GetAccountSummary": 2}
    assert seen == [body, body, b""]


def test_counting_sees_every_call_of_clients_made_inside_the_block() -> None:
    with mock_aws():
        before = boto3.client("sagemaker", region_name="us-east-1")
        # GIVEN a client made inside the block and one made before it
        with counting() as counter:
            inside = boto3.client("sagemaker", region_name="us-east-1")
            # WHEN both call
            inside.list_endpoints()
            inside.list_endpoints()
            before.list_endpoints()
        # THEN only the calls of the client made inside are counted, once per call
        assert counter.take() == {"sagemaker:ListEndpoints": 2}


def test_shape_has_exactly_the_production_endpoints_with_ssm_it_asks_for() -> None:
    for shape in (Shape(endpoints=1000), Shape(endpoints=1000, endpoints_per_config=1)):
        both = [i for i in range(shape.endpoints) if shape.production(i) and shape.ssm_endpoint(i)]
        assert len(both) == shape.production_ssm
    shape = Shape(endpoints=1000)
    assert shape.configs() == 250
    assert sum(shape.ssm_endpoint(i) for i in range(1000)) == 100


def test_report_replaces_only_what_lies_between_the_markers(tmp_path: Path) -> None:
    # GIVEN a document with prose around an old generated block
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# Title\n\nmethod\n\n{report.BEGIN}\nold numbers\n{report.END}\n\nfindings\n")
    # WHEN results without any measurement are written
    report.write({"meta": {"date": "today"}}, doc)
    # THEN the prose is kept, the old numbers are gone and missing parts say so
    text = doc.read_text()
    assert text.startswith("# Title\n\nmethod\n\n")
    assert text.endswith(f"{report.END}\n\nfindings\n")
    assert "old numbers" not in text
    assert "_Not measured: no result_" in text
