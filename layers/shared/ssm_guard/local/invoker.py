"""Runs the template's Lambda handlers locally and records every invocation.

Each invocation is a fresh interpreter (`_runner.py`), like a cold Lambda sandbox: the function's
code directory and its layers on `PYTHONPATH`, the function's environment as deployed in the
emulator (so `!Ref` values are the real resolved ones), `AWS_ENDPOINT_URL` pointing at the
emulator, dummy credentials, and the reserved `AWS_LAMBDA_*` variables. EventBridge deliveries
run asynchronously on a small worker pool, as EventBridge invokes Lambda asynchronously; an
exception is recorded, not retried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssm_guard.local._logging import get_logger

if TYPE_CHECKING:
    from ssm_guard.local.runtime import Runtime

log = get_logger(__name__)

RUNNER = Path(__file__).with_name("_runner.py")
# The runner enforces the function's Timeout on the handler itself; Lambda gives the init phase
# (imports, about a second here: local-aws-notes.md, cold start) its own 10 s. Past both, the
# process is killed.
INIT_ALLOWANCE_SECONDS = 10.0
# What a Lambda sandbox inherits from the host: nothing but a PATH, a HOME and a locale.
_HOST_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
MAX_LOG_CHARS = 64_000


@dataclass(frozen=True)
class FunctionSpec:
    """Where a deployed function's code lives locally, and how to run it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()
    log_group: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["code_dir"] = str(self.code_dir)
        data["layer_dirs"] = [str(path) for path in self.layer_dirs]
        return data


@dataclass
class Invocation:
    """One finished run of a handler. `seq` orders invocations within one emulator."""

    seq: int
    request_id: str
    function: str
    function_name: str
    trigger: dict[str, Any]
    event: Any
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    started_at: str = ""
    duration_ms: float = 0.0
    logs: str = field(default="", repr=False)

    @property
    def endpoint_name(self) -> str | None:
        detail = self.event.get("detail") if isinstance(self.event, dict) else None
        name = detail.get("EndpointName") if isinstance(detail, dict) else None
        return name if isinstance(name, str) else None

    @property
    def decision(self) -> str | None:
        decision = self.result.get("decision") if isinstance(self.result, dict) else None
        return decision if isinstance(decision, str) else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invocation:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def summary(self) -> str:
        """One line for a terminal: function, endpoint, decision or error, duration."""
        parts = [self.function]
        result = self.result if isinstance(self.result, dict) else {}
        # CloudTrail events name the endpoint by ARN only; the handler's answer has the name.
        endpoint = self.endpoint_name or result.get("endpoint_name")
        if isinstance(endpoint, str) and endpoint:
            parts.append(f"endpoint={endpoint}")
        elif isinstance(result.get("config_name"), str) and result["config_name"]:
            parts.append(f"config={result['config_name']}")
        if self.ok:
            parts.append(f"decision={self.decision}" if self.decision else "ok")
        elif self.error:
            parts.append(f"error={self.error.get('errorType')}: {self.error.get('errorMessage')}")
        parts.append(f"({self.duration_ms:.0f} ms, {self.trigger.get('type', '?')})")
        return " ".join(parts)


class InvocationLog:
    """Every invocation, in order; waiters are woken as new ones finish."""

    def __init__(self) -> None:
        self._items: list[Invocation] = []
        self._cond = threading.Condition()
        self._running = 0
        self._pending_events: Counter[str] = Counter()
        self._listeners: list[Callable[[Invocation], None]] = []

    def subscribe(self, listener: Callable[[Invocation], None]) -> None:
        self._listeners.append(listener)

    def started(self, event_id: str | None) -> None:
        with self._cond:
            self._running += 1
            if event_id:
                self._pending_events[event_id] += 1

    def finished(self, invocation: Invocation, event_id: str | None) -> Invocation:
        with self._cond:
            invocation.seq = len(self._items) + 1
            self._items.append(invocation)
            self._running -= 1
            if event_id:
                self._pending_events[event_id] -= 1
                if self._pending_events[event_id] <= 0:
                    del self._pending_events[event_id]
            self._cond.notify_all()
        for listener in list(self._listeners):
            try:
                listener(invocation)
            except Exception:  # a printing listener must not break the emulator
                log.exception("invocation listener failed")
        return invocation

    def since(self, seq: int = 0) -> list[Invocation]:
        with self._cond:
            return list(self._items[seq:])

    def last_seq(self) -> int:
        with self._cond:
            return len(self._items)

    def running(self) -> int:
        with self._cond:
            return self._running

    def wait_new(self, since: int, timeout: float) -> list[Invocation]:
        """Invocations after `since`, waiting up to `timeout` for at least one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._items) <= since:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self._items[since:])

    def wait_events(self, event_ids: list[str], timeout: float) -> bool:
        """Wait until no delivery of these events is still running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(self._pending_events.get(event_id) for event_id in event_ids):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True


class Dispatcher:
    """Invokes functions synchronously (lambda:Invoke, `local invoke`) or on a worker pool
    (EventBridge, Scheduler, asynchronous lambda:Invoke)."""

    def __init__(self, runtime: Runtime, workers: int) -> None:
        self._runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssm-guard-lambda")

    def submit(
        self,
        spec: FunctionSpec,
        event: Any,
        trigger: dict[str, Any],
        *,
        event_id: str | None = None,
    ) -> None:
        self._runtime.invocations.started(event_id)
        log.info(
            "lambda delivery queued",
            extra={"function": spec.logical_id, "trigger": trigger.get("type")},
        )
        self._pool.submit(self._run, spec, event, trigger, None, event_id)

    def invoke(
        self,
        spec: FunctionSpec,
        event: Any,
        trigger: dict[str, Any],
        *,
        env_overrides: Mapping[str, str] | None = None,
    ) -> Invocation:
        self._runtime.invocations.started(None)
        return self._run(spec, event, trigger, env_overrides, None)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(
        self,
        spec: FunctionSpec,
        event: Any,
        trigger: dict[str, Any],
        env_overrides: Mapping[str, str] | None,
        event_id: str | None,
    ) -> Invocation:
        try:
            invocation = run_function(self._runtime, spec, event, trigger, env_overrides)
        except Exception as exc:  # the emulator failed, not the handler: still record it
            log.exception("local invocation failed", extra={"function": spec.logical_id})
            invocation = Invocation(
                seq=0,
                request_id=str(uuid.uuid4()),
                function=spec.logical_id,
                function_name=spec.name,
                trigger=trigger,
                event=event,
                ok=False,
                error={"errorType": "LocalEmulatorError", "errorMessage": str(exc)},
                started_at=_now_iso(),
            )
        return self._runtime.invocations.finished(invocation, event_id)


def sandbox_environment(
    runtime: Runtime,
    spec: FunctionSpec,
    *,
    request_id: str,
    log_stream: str,
    env_overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a Lambda sandbox of `spec` would see, pointed at the emulator."""
    configuration = runtime.function_configuration(spec.name)
    settings = runtime.settings
    env = {name: os.environ[name] for name in _HOST_VARIABLES if name in os.environ}
    env.update({key: str(value) for key, value in configuration["variables"].items()})
    env.update(DUMMY_CREDENTIALS)
    env.update(
        {
            "AWS_ENDPOINT_URL": runtime.endpoint_url,
            "AWS_REGION": settings.region,
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration["memory"]),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{configuration['runtime']}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": configuration["handler"],
            # What `sam local invoke` sets; Powertools Tracer switches itself off on it.
            "AWS_SAM_LOCAL": "true",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(str(p) for p in (spec.code_dir, *spec.layer_dirs)),
            "SSM_GUARD_LOCAL_FUNCTION_ARN": spec.arn,
            "SSM_GUARD_LOCAL_REQUEST_ID": request_id,
            "SSM_GUARD_LOCAL_TIMEOUT": str(configuration["timeout"]),
        }
    )
    env.update({key: str(value) for key, value in (env_overrides or {}).items()})
    return env


def run_function(
    runtime: Runtime,
    spec: FunctionSpec,
    event: Any,
    trigger: dict[str, Any],
    env_overrides: Mapping[str, str] | None = None,
) -> Invocation:
    """Run the handler once in a subprocess and return the (unnumbered) invocation."""
    request_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    log_stream = f"{started:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    env = sandbox_environment(
        runtime, spec, request_id=request_id, log_stream=log_stream, env_overrides=env_overrides
    )
    timeout = float(env["SSM_GUARD_LOCAL_TIMEOUT"])
    handler = env["_HANDLER"]
    begin = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ssm-guard-invoke-") as tmp:
        event_file = Path(tmp, "event.json")
        result_file = Path(tmp, "result.json")
        event_file.write_text(json.dumps(event), encoding="utf-8")
        command = [sys.executable, str(RUNNER), handler, str(event_file), str(result_file)]
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and runner script
            command, env=env, cwd=spec.code_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        runtime.sandboxes.add(process)
        try:
            output, _ = process.communicate(timeout=timeout + INIT_ALLOWANCE_SECONDS)
            logs = output.decode("utf-8", "replace")
            outcome = _read_outcome(result_file, request_id, process.returncode)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            logs = output.decode("utf-8", "replace")
            message = f"{started:%Y-%m-%dT%H:%M:%S.%fZ} {request_id} Task timed out after "
            outcome = {
                "ok": False,
                "error": {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"{message}{timeout:.2f} seconds",
                },
            }
        finally:
            runtime.sandboxes.discard(process)
    duration_ms = (time.monotonic() - begin) * 1000
    invocation = Invocation(
        seq=0,
        request_id=request_id,
        function=spec.logical_id,
        function_name=spec.name,
        trigger=trigger,
        event=event,
        ok=bool(outcome["ok"]),
        result=outcome.get("result"),
        error=outcome.get("error"),
        started_at=started.isoformat().replace("+00:00", "Z"),
        duration_ms=round(duration_ms, 1),
        logs=logs[-MAX_LOG_CHARS:],
    )
    runtime.write_function_logs(spec, log_stream, invocation)
    log.info(
        "lambda invoked",
        extra={
            "function": spec.logical_id,
            "ok": invocation.ok,
            "endpoint_name": invocation.endpoint_name,
            "decision": invocation.decision,
            "error_type": (invocation.error or {}).get("errorType"),
            "duration_ms": invocation.duration_ms,
        },
    )
    return invocation


def _read_outcome(result_file: Path, request_id: str, returncode: int) -> dict[str, Any]:
    try:
        outcome: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        message = (
            f"RequestId: {request_id} Error: Runtime exited with error: exit status {returncode}"
        )
        return {"ok": False, "error": {"errorType": "Runtime.ExitError", "errorMessage": message}}
    return outcome


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def invoke_function(
    function: str, event: Any, env_overrides: Mapping[str, str] | None = None
) -> Invocation:
    """Run a deployed function (template logical id, name or ARN) in the emulator of this
    process, synchronously. From another process, use `LocalAws.invoke`."""
    from ssm_guard.local.runtime import current

    runtime = current()
    if runtime is None:
        raise RuntimeError("no local AWS runs in this process; use LocalAws(...).invoke")
    spec = runtime.find_function(function)
    if spec is None:
        raise LookupError(f"no deployed function {function!r}")
    return runtime.dispatcher.invoke(
        spec, event, {"type": "local-invoke"}, env_overrides=env_overrides
    )
