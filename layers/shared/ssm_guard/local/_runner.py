"""Runs one Lambda handler in a fresh interpreter, as a Lambda sandbox would.

Started by `ssm_guard.local.invoker` as `python _runner.py HANDLER EVENT_FILE RESULT_FILE` with
the function's environment. It imports nothing of the emulator: the handler sees only its own
code, its layers and the environment. The handler's stdout/stderr are its logs; the outcome goes
to RESULT_FILE as `{"ok": true, "result": ...}` or `{"ok": false, "error": {...}}`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

# The runner's own folder would shadow the function's modules: Lambda puts only the task root
# and the layers on the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    def __init__(self, deadline_ms: int) -> None:
        env = os.environ
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = env["SSM_GUARD_LOCAL_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = env["SSM_GUARD_LOCAL_REQUEST_ID"]
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": error_type,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__)[1:],
    }


def _write(result_file: str, outcome: dict[str, Any]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    with open(result_file, "w", encoding="utf-8") as stream:
        json.dump(outcome, stream)


def _arm_timeout(seconds: float, result_file: str) -> None:
    """End the process as Lambda ends a handler that outlives its Timeout (init excluded)."""

    def expire() -> None:
        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        request_id = os.environ["SSM_GUARD_LOCAL_REQUEST_ID"]
        message = f"{started}Z {request_id} Task timed out after {seconds:.2f} seconds"
        print(message, file=sys.stderr)
        _write(
            result_file,
            {"ok": False, "error": {"errorType": "Sandbox.Timedout", "errorMessage": message}},
        )
        os._exit(0)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def _run(handler_path: str, event: Any, result_file: str) -> dict[str, Any]:
    module_name, _, function_name = handler_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # Lambda reports any import failure this way
        error = _error("Runtime.ImportModuleError", exc)
        error["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        return {"ok": False, "error": error}
    handler = getattr(module, function_name, None)
    if not callable(handler):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return {
            "ok": False,
            "error": {"errorType": "Runtime.HandlerNotFound", "errorMessage": message},
        }
    timeout = float(os.environ.get("SSM_GUARD_LOCAL_TIMEOUT", "3"))
    context = LambdaContext(int(time.time() * 1000) + int(timeout * 1000))
    _arm_timeout(timeout, result_file)
    try:
        result = handler(event, context)
    except Exception as exc:
        error = _error(type(exc).__name__, exc)
        # What the Python runtime prints before reporting the failure.
        print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
        print("".join(error["stackTrace"]), file=sys.stderr)
        return {"ok": False, "error": error}
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "error": _error("Runtime.MarshalError", exc)}
    return {"ok": True, "result": result}


def main() -> int:
    handler_path, event_file, result_file = sys.argv[1:4]
    with open(event_file, encoding="utf-8") as stream:
        event = json.load(stream)
    _write(result_file, _run(handler_path, event, result_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
