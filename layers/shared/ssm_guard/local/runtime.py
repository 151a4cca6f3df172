"""The state the project's additions share inside the emulator process.

moto keeps its backends in process-wide dictionaries; the additions keep theirs in one `Runtime`
object, made current while an emulator runs. The patched moto methods check `active()` first
and fall back to moto's own behaviour otherwise, so an in-process `mock_aws` in the same
interpreter is left as moto ships it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ssm_guard.local._logging import get_logger
from ssm_guard.local.invoker import Dispatcher, FunctionSpec, Invocation, InvocationLog
from ssm_guard.local.timeline import Timeline

log = get_logger(__name__)

DEFAULT_REGION = "us-east-1"
# moto's default account (moto.core.models.DEFAULT_ACCOUNT_ID): requests signed with any
# access key that moto does not know land there.
DEFAULT_ACCOUNT_ID = "123456789012"
DELAY_ENV = "SSM_GUARD_LOCAL_DELAY_SECONDS"
DEFAULT_DELAY_SECONDS = 2.0
# LookupEvents answers from the last this many reported calls.
CLOUDTRAIL_RECORDS = 10_000


def delay_from_env(default: float = DEFAULT_DELAY_SECONDS) -> float:
    raw = os.environ.get(DELAY_ENV, "").strip()
    if not raw:
        return default
    value = float(raw)
    if value < 0:
        raise ValueError(f"{DELAY_ENV} must be zero or more, got {raw!r}")
    return value


@dataclass
class Settings:
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    # How long an endpoint stays Creating / Updating / Deleting.
    delay: float = DEFAULT_DELAY_SECONDS
    # Concurrent asynchronous Lambda deliveries.
    workers: int = 4
    # How often one-time EventBridge Scheduler schedules are checked.
    scheduler_interval: float = 0.5


@dataclass
class EndpointState:
    """What the emulator tracks about an endpoint beyond moto's record of it."""

    fleet: dict[str, list[str]] = field(default_factory=dict)
    # The config variants the fleet runs (EnableSSMAccess, ModelName), kept should the config
    # be deleted while the endpoint lives, which AWS allows.
    config_variants: list[dict[str, Any]] = field(default_factory=list)
    # Bumped on every transition; a delayed action for an older generation does nothing.
    generation: int = 0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.RLock()
        self.endpoint_url = ""
        self.timeline = Timeline()
        self.invocations = InvocationLog()
        self.dispatcher = Dispatcher(self, settings.workers)
        self.functions: dict[str, FunctionSpec] = {}
        self.endpoints: dict[tuple[str, str, str], EndpointState] = {}
        self.fired_schedules: set[tuple[str, float]] = set()
        # Handler processes still running, stopped with the emulator.
        self.sandboxes: set[subprocess.Popen[bytes]] = set()
        # The CloudTrail records of the calls reported so far (cloudtrail.TrailRecord).
        self._cloudtrail: deque[Any] = deque(maxlen=CLOUDTRAIL_RECORDS)

    # -- functions -------------------------------------------------------------------------

    def register_functions(self, specs: list[FunctionSpec]) -> None:
        with self.lock:
            for spec in specs:
                self.functions[spec.name] = spec

    def find_function(self, name_or_arn: str) -> FunctionSpec | None:
        """By physical name, ARN (with or without qualifier) or template logical id."""
        key = name_or_arn
        if key.startswith("arn:"):
            key = key.split(":")[6]
        with self.lock:
            if key in self.functions:
                return self.functions[key]
            matches = [spec for spec in self.functions.values() if spec.logical_id == key]
        return matches[-1] if matches else None

    def function_configuration(self, name: str) -> dict[str, Any]:
        """The deployed configuration moto holds (GetFunctionConfiguration)."""
        from moto.awslambda.utils import get_backend

        function = get_backend(self.settings.account_id, self.settings.region).get_function(name)
        return {
            "variables": dict(function.environment_vars or {}),
            "handler": function.handler,
            "runtime": function.run_time,
            "timeout": function.timeout,
            "memory": function.memory_size,
        }

    def write_function_logs(self, spec: FunctionSpec, stream: str, invocation: Invocation) -> None:
        """Put the handler's output in CloudWatch Logs, framed as Lambda frames it."""
        from ssm_guard.local.cloudwatch import put_lines

        lines = [f"START RequestId: {invocation.request_id} Version: $LATEST"]
        lines += [line for line in invocation.logs.splitlines() if line.strip()]
        lines.append(f"END RequestId: {invocation.request_id}")
        lines.append(
            f"REPORT RequestId: {invocation.request_id}\tDuration: {invocation.duration_ms} ms"
        )
        try:
            put_lines(self, spec.log_group, stream, lines)
        except Exception:  # logs are a convenience; the invocation record is what counts
            log.exception("function logs not written", extra={"function": spec.logical_id})

    # -- CloudTrail ------------------------------------------------------------------------

    def record_cloudtrail(self, record: Any) -> None:
        with self.lock:
            self._cloudtrail.append(record)

    def cloudtrail_records(self) -> list[Any]:
        with self.lock:
            return list(self._cloudtrail)

    # -- endpoints -------------------------------------------------------------------------

    def endpoint_state(self, account_id: str, region: str, name: str) -> EndpointState:
        with self.lock:
            return self.endpoints.setdefault((account_id, region, name), EndpointState())

    def instances(self, name: str) -> dict[str, list[str]]:
        key = (self.settings.account_id, self.settings.region, name)
        with self.lock:
            state = self.endpoints.get(key)
            return {variant: list(ids) for variant, ids in (state.fleet if state else {}).items()}

    # -- lifecycle -------------------------------------------------------------------------

    def settle(self, timeout: float) -> bool:
        """Wait until no transition is scheduled and no invocation runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            if not self.timeline.wait_idle(remaining):
                return False
            if not self.invocations.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            # An invocation may have scheduled more work (an UpdateEndpoint): look again.
            if self.timeline.pending() == 0 and self.invocations.running() == 0:
                return True
        return False

    def close(self) -> None:
        self.timeline.stop()
        self.dispatcher.shutdown()
        for process in list(self.sandboxes):
            process.kill()


_current: Runtime | None = None


def activate(runtime: Runtime) -> None:
    global _current
    if _current is not None and _current is not runtime:
        raise RuntimeError("another local AWS emulator already runs in this process")
    _current = runtime


def deactivate(runtime: Runtime) -> None:
    global _current
    if _current is runtime:
        _current = None


def current() -> Runtime | None:
    return _current
