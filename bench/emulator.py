"""The local AWS the benchmarks run on, and the server-side log of every request it answers.

The project's embedded local AWS (`ssm_guard.local.LocalAws`, moto in server mode plus the
SageMaker lifecycle, AWS-like paging, events to the template's functions) runs in a thread of
this process; a plain moto `ThreadedMotoServer` stands in only when that package cannot start,
and the results say which one ran.

Every HTTP request is logged on the server side by caller, service and operation. The caller is
the access key that signed the request: the guard's functions sign with the emulator's dummy key,
the fixture builder with `bench-fixture`, Cloud Custodian with `bench-custodian`, so the calls of
each are counted apart even when they overlap, retries included.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.config import Config

REGION = "us-east-1"
# moto's default account: requests signed with any access key it does not know land there.
ACCOUNT_ID = "123456789012"
GUARD = "testing"
"""The key the guard signs with: the emulator gives it to every function sandbox."""
FIXTURE = "bench-fixture"
CUSTODIAN = "bench-custodian"

_CREDENTIAL_RE = re.compile(r"Credential=([^/]+)/\d{8}/[^/]+/([^/]+)/aws4_request")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def operation_of(environ: dict[str, Any], body: bytes) -> tuple[str, str, str]:
    """(caller access key, service, operation) of a signed AWS request.

    JSON protocols name the operation in `X-Amz-Target` (`SageMaker.DescribeEndpoint`), query
    protocols (IAM, SNS, STS) in the `Action` form field, REST protocols only by method and path.
    """
    credential = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if credential is None:
        return "", "unsigned", environ.get("PATH_INFO", "/")
    caller, service = credential.group(1), credential.group(2)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return caller, service, target.rsplit(".", 1)[-1]
    fields = parse_qs(environ.get("QUERY_STRING", ""))
    if not fields.get("Action") and body:
        fields = parse_qs(body.decode("utf-8", "replace"))
    if fields.get("Action"):
        return caller, service, fields["Action"][0]
    path = "/".join(environ.get("PATH_INFO", "/").split("/")[:3])
    return caller, service, f"{environ.get('REQUEST_METHOD', 'GET')} {path}"


@dataclass
class RequestLog:
    """Remembers (caller, service, operation) of every signed request: a request listener of the
    embedded local AWS (`observe`), or WSGI middleware around a plain moto server's app."""

    app: WsgiApp | None = None
    entries: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, environ: dict[str, Any], body: bytes) -> None:
        caller, service, operation = operation_of(environ, body)
        if caller:
            with self._lock:
                self.entries.append((caller, service, operation))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self.observe(environ, body)
        return self.app(environ, start_response)

    def mark(self) -> int:
        with self._lock:
            return len(self.entries)

    def since(self, mark: int, caller: str | None = None) -> Counter[str]:
        """`service:Operation` -> requests answered since `mark` (of one caller, or all)."""
        with self._lock:
            entries = self.entries[mark:]
        return Counter(f"{s}:{o}" for c, s, o in entries if caller in (None, c))


@dataclass
class LocalAws:
    url: str
    log: RequestLog
    kind: str
    project: Any = None
    stubs: list[str] = field(default_factory=list)
    """The project's `ssm_guard.local.LocalAws` when it runs (deploy, send, settle)."""

    def env(self, caller: str = GUARD) -> dict[str, str]:
        """What a process needs to talk to this local AWS, signing as `caller`."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": caller,
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def client(self, service: str, caller: str = FIXTURE) -> Any:
        """A client signing as `caller`; a few retries, so that a gap fails fast."""
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=caller,
            aws_secret_access_key="testing",
            aws_session_token="testing",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=300),
        )

    def reset(self) -> None:
        """Forget every AWS resource (moto's reset API); the server and its log stay."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (local)
            response.read()

    def settle(self, timeout: float = 300.0) -> None:
        """Wait until no endpoint transition is pending and no function runs."""
        if self.project is not None:
            self.project.settle(timeout=timeout)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _moto_server() -> tuple[str, Any, Callable[[], None]]:
    from moto.server import ThreadedMotoServer

    # werkzeug logs one line per request: thousands of lines that bury the results.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server._server, server.stop  # noqa: SLF001


def stub_missing_operations() -> list[str]:
    """Operations the guard calls that moto 5.2.5 lacks, answered as AWS would on an account
    with nothing to find; returns their names.

    NOTE: moto answers an operation it lacks with HTTP 500 and a server traceback. The guard
    asks CloudTrail with a client that does not retry, so the count is one call either way; the
    stub answers as AWS would for an account with no matching trail events, without the noise.
    It steps aside once the embedded local AWS (or moto) implements the operation.
    """
    from moto.cloudtrail.responses import CloudTrailResponse

    stubbed = []
    if not hasattr(CloudTrailResponse, "lookup_events"):

        def lookup_events(_: Any) -> str:
            return '{"Events": []}'

        CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]
        stubbed.append("cloudtrail:LookupEvents (answers no events)")
    return stubbed


@contextmanager
def local_aws(*, project: bool = True, delay: float = 0.0) -> Iterator[LocalAws]:
    """Start a local AWS with a request log. `delay` is how long endpoints stay Creating or
    Updating (0: the transition happens before the API call answers)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stubs = stub_missing_operations()
    if project:
        from ssm_guard.local import LocalAws as ProjectAws

        emulator = ProjectAws(delay=delay, log_level="ERROR").start()
        log = RequestLog()
        emulator.add_request_listener(log.observe)
        kind = "ssm_guard.local (embedded local AWS, in this process)"
        aws = LocalAws(emulator.endpoint_url, log, kind, emulator, stubs)
        stop: Callable[[], None] = emulator.stop
    else:
        url, wsgi_server, stop = _moto_server()
        log = RequestLog(wsgi_server.app)
        wsgi_server.app = log
        aws = LocalAws(url, log, "moto ThreadedMotoServer (no AWS-like Search paging)", None, stubs)
    try:
        yield aws
    finally:
        stop()
