"""Running a deployed function's handler in this interpreter, its AWS calls counted.

The function is the one the embedded local AWS deployed from template.yaml: same code folder,
same handler, the environment the emulator would give its sandbox (the stack's resolved `!Ref`
values, `AWS_ENDPOINT_URL`, dummy credentials). Only the interpreter differs, so the botocore
hook of `bench.counting` sees every call.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.counting import CallCounter
from bench.emulator import environment

ROOT = Path(__file__).resolve().parent.parent
# What a Lambda sandbox gets from the host, which this process must not lend the handler.
_HOST_ONLY = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
_handlers: dict[str, Any] = {}


class Context:
    """The attributes Powertools and the guard read from a Lambda context."""

    def __init__(self, name: str, arn: str, remaining_ms: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


@dataclass
class Ran:
    function: str
    result: Any
    error: str | None
    calls: dict[str, int]
    seconds: float

    @property
    def decision(self) -> str | None:
        """What the handler says it did (`decision` for the enforcer, `action` elsewhere)."""
        return decision_of(self.result)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "decision": self.decision,
            "error": self.error,
            "calls": sum(self.calls.values()),
            "calls_by_operation": dict(sorted(self.calls.items())),
        }


def decision_of(result: Any) -> str | None:
    if not isinstance(result, dict):
        return None
    found = result.get("decision") or result.get("action")
    return str(found) if found else None


def load_handler(logical_id: str, code_dir: Path, handler: str) -> Any:
    """The handler, imported from its folder under a module name of its own (every function's
    module is called `app`), once per function as in a warm Lambda container."""
    if logical_id not in _handlers:
        module_name, _, function_name = handler.rpartition(".")
        spec = importlib.util.spec_from_file_location(
            f"bench_fn_{logical_id}", code_dir / f"{module_name}.py"
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"no handler module in {code_dir}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _handlers[logical_id] = getattr(module, function_name)
    return _handlers[logical_id]


def _deployed(logical_id: str) -> tuple[Any, dict[str, str]]:
    """The deployed function and the environment its sandbox would get."""
    from ssm_guard.local.invoker import sandbox_environment
    from ssm_guard.local.runtime import current

    runtime = current()
    if runtime is None:
        raise RuntimeError("the embedded local AWS does not run in this process")
    spec = runtime.find_function(logical_id)
    if spec is None:
        raise LookupError(f"{logical_id} is not deployed")
    env = sandbox_environment(runtime, spec, request_id=str(uuid.uuid4()), log_stream="bench")
    return spec, env


def invoke(
    counter: CallCounter, logical_id: str, event: Any, *, remaining_ms: int = 120_000
) -> Ran:
    """Invoke one deployed function here; an exception is recorded, as Lambda records it."""
    spec, env = _deployed(logical_id)
    env = {k: v for k, v in env.items() if k not in _HOST_ONLY}
    handler = load_handler(logical_id, spec.code_dir, spec.handler)
    context = Context(spec.name, spec.arn, remaining_ms)
    counter.take()
    error = None
    result: Any = None
    with environment(env), contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        try:
            result = handler(event, context)
        except Exception as exc:  # Lambda would record it and retry
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        seconds = time.perf_counter() - started
    return Ran(logical_id, result, error, dict(counter.take()), seconds)


def in_child(logical_id: str, event: Any, *, remaining_ms: int = 120_000) -> tuple[Ran, float]:
    """Invoke one deployed function in a fresh interpreter (`bench.child`) with exactly its
    sandbox's environment (log level included); returns what ran and the child's whole wall
    time (interpreter start and imports included)."""
    spec, env = _deployed(logical_id)
    path = [str(ROOT), str(spec.code_dir), *(str(p) for p in spec.layer_dirs)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        event_file = Path(tmp) / "event.json"
        event_file.write_text(json.dumps(event))
        command = [sys.executable, "-m", "bench.child", str(spec.code_dir), spec.handler]
        command += [str(event_file), str(remaining_ms), spec.name, spec.arn]
        started = time.perf_counter()
        done = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800
        )
        wall = time.perf_counter() - started
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"bench.child failed: {done.stderr[-2000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    ran = Ran(logical_id, found["result"], found["error"], found["calls"], found["seconds"])
    return ran, wall
