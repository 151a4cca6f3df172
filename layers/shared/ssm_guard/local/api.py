"""`LocalAws`: the embedded local AWS, driven from Python (tests, the demo, the CLI).

    with LocalAws(delay=0.2) as aws:            # server in a thread of this process
        aws.deploy_stack()
        sagemaker = aws.client("sagemaker")
        ... create an endpoint ...
        aws.wait_for_invocations(function="EnforcerFunction",
                                 predicate=lambda i: i.endpoint_name == "my-endpoint")

`LocalAws(isolated=True)` runs the server in a child process instead (what the pytest fixture
does, so that an in-process `mock_aws` elsewhere cannot reset it), and `LocalAws.connect(url)`
drives one started elsewhere (`ssm-guard local up`). All three talk to the server over HTTP: the
AWS APIs through boto3, the emulator's own state through its control API (`/_ssm_guard/`).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssm_guard.local.invoker import DUMMY_CREDENTIALS, Invocation

if TYPE_CHECKING:
    from ssm_guard.local.server import Emulator

DEFAULT_REGION = "us-east-1"
CONTROL_PREFIX = "/_ssm_guard/"
_STARTUP_TIMEOUT = 60.0


class LocalAwsError(RuntimeError):
    """The emulator refused a request or is not reachable."""


class LocalAws:
    def __init__(
        self,
        *,
        delay: float | None = None,
        port: int = 0,
        region: str = DEFAULT_REGION,
        template: str | Path | None = None,
        isolated: bool = False,
        log_level: str = "WARNING",
    ) -> None:
        self.delay = delay
        self.port = port
        self.region = region
        self.template = Path(template).resolve() if template else None
        self.isolated = isolated
        self.log_level = log_level
        self.endpoint_url = ""
        self.account_id = ""
        self.stack: dict[str, Any] | None = None
        self._emulator: Emulator | None = None
        self._process: subprocess.Popen[str] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def connect(cls, endpoint_url: str) -> LocalAws:
        """Drive an emulator that already runs at `endpoint_url`."""
        aws = cls()
        aws.endpoint_url = endpoint_url.rstrip("/")
        health = aws.health()
        aws.region = health["region"]
        aws.account_id = health["account_id"]
        aws.stack = health.get("stack")
        return aws

    def start(self) -> LocalAws:
        if self.isolated:
            self._start_process()
        else:
            self._start_thread()
        health = self.health()
        self.account_id = health["account_id"]
        return self

    def stop(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _start_thread(self) -> None:
        from ssm_guard.local._logging import configure
        from ssm_guard.local.runtime import Settings, delay_from_env
        from ssm_guard.local.server import Emulator

        configure(self.log_level)
        delay = delay_from_env() if self.delay is None else self.delay
        settings = Settings(region=self.region, delay=delay)
        self._emulator = Emulator(port=self.port, settings=settings, template=self.template)
        self.endpoint_url = self._emulator.start()

    def _start_process(self) -> None:
        command = [
            sys.executable,
            "-m",
            "ssm_guard.local.server",
            "--port",
            str(self.port),
            "--region",
            self.region,
            "--log-level",
            self.log_level,
        ]
        if self.delay is not None:
            command += ["--delay", str(self.delay)]
        if self.template is not None:
            command += ["--template", str(self.template)]
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=subprocess.PIPE, text=True, env=env
        )
        lines: queue.Queue[str] = queue.Queue()

        def drain(stream: Any) -> None:
            for line in stream:
                lines.put(line)
            lines.put("")

        threading.Thread(target=drain, args=(self._process.stdout,), daemon=True).start()
        try:
            first = lines.get(timeout=_STARTUP_TIMEOUT)
        except queue.Empty as exc:
            self.stop()
            raise LocalAwsError("the local AWS process did not start in time") from exc
        if not first:
            code = self._process.wait(timeout=5)
            self._process = None
            raise LocalAwsError(f"the local AWS process exited with status {code}")
        self.endpoint_url = json.loads(first)["endpoint_url"]

    def add_request_listener(self, listener: Callable[[dict[str, Any], bytes], None]) -> None:
        """Call `listener(environ, body)` with every AWS request the emulator answers (the WSGI
        environ and the request body), before it is answered: request logs, counters. Only for
        an emulator running in this process."""
        if self._emulator is None:
            raise LocalAwsError("request listeners need the local AWS running in this process")
        self._emulator.request_listeners.append(listener)

    # -- plain AWS access ------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3, the AWS CLI or a subprocess here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }

    def client(self, service: str, *, max_attempts: int = 1) -> Any:
        """A boto3 client for the emulator. Retries are capped so that a gap fails fast:
        against moto, an operation it lacks answers HTTP 500, which botocore would retry."""
        import boto3
        from botocore.config import Config

        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=120,
        )
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=config,
        )

    # -- control API -----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        route: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> Any:
        if not self.endpoint_url:
            raise LocalAwsError("the local AWS is not started")
        url = self.endpoint_url + CONTROL_PREFIX + route
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - http to our own emulator
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise LocalAwsError(message) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise LocalAwsError(f"no local AWS answers at {self.endpoint_url}: {exc}") from exc

    def health(self) -> dict[str, Any]:
        health: dict[str, Any] = self._call("GET", "health", timeout=5)
        if health.get("service") != "ssm-guard-local":
            raise LocalAwsError(f"{self.endpoint_url} is not an ssm-guard local AWS")
        return health

    def deploy_stack(
        self,
        *,
        parameter_overrides: Mapping[str, Any] | None = None,
        stack_name: str | None = None,
        template: str | Path | None = None,
    ) -> dict[str, Any]:
        """Deploy template.yaml (or `template`) into the emulator; returns the stack summary:
        `functions` {logical id: {name, arn, code_dir, ...}}, `rules`, `outputs`, `skipped`."""
        body: dict[str, Any] = {"parameter_overrides": dict(parameter_overrides or {})}
        if stack_name:
            body["stack_name"] = stack_name
        if template or self.template:
            chosen = template or self.template
            body["template"] = str(Path(chosen).resolve())  # type: ignore[arg-type]
        self.stack = self._call("POST", "deploy", body, timeout=120)
        return self.stack

    def function_name(self, logical_id: str) -> str:
        """The deployed (physical) name of a template function."""
        stack = self.stack or self._call("GET", "stack")
        return str(stack["functions"][logical_id]["name"])

    def invoke(
        self,
        function: str,
        event: Any = None,
        *,
        env_overrides: Mapping[str, str] | None = None,
    ) -> Invocation:
        """Run a function's handler now, synchronously (`local invoke`); never raises for a
        handler error: look at `Invocation.ok` / `.error`."""
        body = {"function": function, "event": {} if event is None else event}
        if env_overrides:
            body["env_overrides"] = dict(env_overrides)
        return Invocation.from_dict(self._call("POST", "invoke", body, timeout=900))

    @property
    def invocations(self) -> list[Invocation]:
        return self.invocations_since(0)

    def invocations_since(self, seq: int) -> list[Invocation]:
        found = self._call("GET", "invocations", params={"since": seq})
        return [Invocation.from_dict(item) for item in found["invocations"]]

    def mark(self) -> int:
        """The sequence number of the last finished invocation, for `since=`."""
        return int(self._call("GET", "invocations", params={"since": 10**9})["last_seq"])

    def wait_for_invocations(
        self,
        *,
        function: str | None = None,
        predicate: Callable[[Invocation], bool] | None = None,
        count: int = 1,
        since: int = 0,
        timeout: float = 30.0,
    ) -> list[Invocation]:
        """Wait until `count` finished invocations after `since` match `function` (logical id
        or deployed name) and `predicate`; raises TimeoutError listing what ran instead."""
        deadline = time.monotonic() + timeout
        seen = since
        matches: list[Invocation] = []
        others: list[Invocation] = []
        while True:
            remaining = deadline - time.monotonic()
            params = {"since": seen, "wait": max(0.0, min(remaining, 5.0))}
            found = self._call("GET", "invocations", params=params, timeout=remaining + 30)
            for item in found["invocations"]:
                invocation = Invocation.from_dict(item)
                seen = max(seen, invocation.seq)
                wanted = function in (None, invocation.function, invocation.function_name)
                if wanted and (predicate is None or predicate(invocation)):
                    matches.append(invocation)
                else:
                    others.append(invocation)
            if len(matches) >= count:
                return matches
            if time.monotonic() >= deadline:
                seen_lines = "; ".join(item.summary() for item in others[-10:]) or "nothing"
                raise TimeoutError(
                    f"{len(matches)}/{count} matching invocations of {function or 'any function'}"
                    f" after {timeout:.0f}s; other invocations: {seen_lines}"
                )

    def put_events(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Put events on the default bus; each is a full EventBridge event (source,
        detail-type, detail...) or a PutEvents entry (Source, DetailType, Detail...).
        Returns the event ids EventBridge assigned."""
        entries = [to_put_events_entry(event) for event in events]
        client = self.client("events")
        ids = []
        for start in range(0, len(entries), 10):
            response = client.put_events(Entries=entries[start : start + 10])
            for entry in response["Entries"]:
                if "EventId" not in entry:
                    raise LocalAwsError(
                        f"PutEvents refused an event: {entry.get('ErrorCode')}: "
                        f"{entry.get('ErrorMessage')}"
                    )
                ids.append(entry["EventId"])
        return ids

    def wait_for_deliveries(
        self, event_ids: list[str], *, timeout: float = 60.0
    ) -> list[Invocation]:
        """Wait until every function these events triggered has finished; returns them."""
        found = self._call(
            "POST",
            "events/wait",
            {"event_ids": event_ids, "timeout": timeout},
            timeout=timeout + 30,
        )
        if not found["done"]:
            raise TimeoutError(f"deliveries of {event_ids} still running after {timeout:.0f}s")
        return [Invocation.from_dict(item) for item in found["invocations"]]

    def send(
        self, events: Iterable[Mapping[str, Any]], *, timeout: float = 60.0
    ) -> list[Invocation]:
        """Put events on the bus and return the invocations they triggered through the
        deployed rules (an empty list when no rule matched)."""
        return self.wait_for_deliveries(self.put_events(events), timeout=timeout)

    def instances(self, endpoint_name: str) -> dict[str, list[str]]:
        """The live instance ids of an endpoint, per variant."""
        found = self._call("GET", "instances", params={"endpoint": endpoint_name})
        return {variant: list(ids) for variant, ids in found["instances"].items()}

    def wait_for_endpoint(
        self, name: str, *, status: str = "InService", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll DescribeEndpoint until `status`; returns the description."""
        sagemaker = self.client("sagemaker")
        deadline = time.monotonic() + timeout
        while True:
            description: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=name)
            if description["EndpointStatus"] == status:
                return description
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"endpoint {name} is {description['EndpointStatus']}, not {status}, "
                    f"after {timeout:.0f}s"
                )
            time.sleep(0.05)

    def settle(self, *, timeout: float = 60.0) -> None:
        """Wait until no endpoint transition is pending and no function runs."""
        if not self._call("POST", "settle", {"timeout": timeout}, timeout=timeout + 30)["settled"]:
            raise TimeoutError(f"the local AWS was still busy after {timeout:.0f}s")

    def advance(self) -> int:
        """Complete every pending endpoint transition now (Creating -> InService, ...), as if
        the delay had passed; returns how many ran. With a long `delay`, a test can hold an
        endpoint in Creating/Updating as long as it needs, then release it without sleeping."""
        return int(self._call("POST", "advance")["ran"])

    def fail_endpoint(self, endpoint_name: str, reason: str | None = None) -> None:
        """Put an endpoint in `Failed` now, with a FailureReason and a FAILED event."""
        body = {"endpoint": endpoint_name}
        if reason:
            body["reason"] = reason
        self._call("POST", "endpoints/fail", body)

    def start_trail(self, name: str = "local-management-events") -> str:
        """Create a CloudTrail trail (and its bucket) and start logging, so that SageMaker calls
        reach EventBridge as `AWS API Call via CloudTrail` events, as a trail makes them do in
        AWS. Returns the trail's name; `client("cloudtrail").stop_logging(Name=...)` ends it."""
        bucket = f"{name}-{self.account_id or 'local'}"
        self.client("s3").create_bucket(Bucket=bucket)
        cloudtrail = self.client("cloudtrail")
        cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True)
        cloudtrail.start_logging(Name=name)
        return name

    def set_delay(self, seconds: float) -> None:
        """How long endpoints stay Creating / Updating / Deleting from now on."""
        self._call("POST", "settings", {"delay": seconds})

    def fire_due_schedules(
        self, *, now: datetime | None = None, timeout: float = 60.0
    ) -> list[Invocation]:
        """Fire the one-time Scheduler schedules due by `now` (default: the real now; pass a
        later time to run a schedule early) and wait for their invocations. The emulator
        also checks by itself every half second."""
        body = {"now": now.isoformat()} if now else {}
        ids = self._call("POST", "schedules/fire-due", body)["event_ids"]
        return self.wait_for_deliveries(ids, timeout=timeout) if ids else []

    def fire_schedule(self, rule_or_function: str, *, timeout: float = 60.0) -> list[Invocation]:
        """Deliver one `Scheduled Event` for a scheduled rule (by rule name, or the function
        it targets) and wait for the invocations."""
        ids = self._call("POST", "rules/fire", {"name": rule_or_function})["event_ids"]
        return self.wait_for_deliveries(ids, timeout=timeout)


def to_put_events_entry(event: Mapping[str, Any]) -> dict[str, Any]:
    """A full EventBridge event or a PutEvents entry -> a PutEvents entry."""
    if "Source" in event or "DetailType" in event:
        given = dict(event)
        if not isinstance(given.get("Detail"), str):
            given["Detail"] = json.dumps(given.get("Detail") or {})
        return given
    missing = [key for key in ("source", "detail-type") if key not in event]
    if missing:
        raise ValueError(f"not an EventBridge event: missing {', '.join(missing)}")
    entry: dict[str, Any] = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event.get("detail") or {}),
        "Resources": list(event.get("resources") or []),
    }
    moment = event.get("time")
    if isinstance(moment, str) and "T" in moment:
        entry["Time"] = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return entry
