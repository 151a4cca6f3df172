"""Run one function's handler in a fresh interpreter, its calls counted and its work timed.

    python -m bench.child CODE_DIR HANDLER EVENT_FILE REMAINING_MS FUNCTION_NAME FUNCTION_ARN

Started by `bench.invoke.in_child` with the environment the emulator gives the function's
sandbox. The handler then shares no interpreter (and no GIL) with the emulator's server, as
Cloud Custodian does not, so the two are timed alike. Prints one JSON line: the handler's
result or error, its calls by operation, the seconds the handler took and the seconds from
interpreter start to the handler's return (imports included, as in a Lambda cold start).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()


def main(argv: list[str]) -> int:
    code_dir, handler, event_file, remaining_ms, name, arn = argv
    from bench.counting import counting
    from bench.invoke import Context, load_handler

    event = json.loads(Path(event_file).read_text())
    function = load_handler(name, Path(code_dir), handler)
    context = Context(name, arn, int(remaining_ms))
    error = None
    result = None
    with counting(fresh_clients=True) as counter:
        began = time.perf_counter()
        try:
            result = function(event, context)
        except Exception as exc:  # recorded, as Lambda records it
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        ended = time.perf_counter()
    print(
        json.dumps(
            {
                "result": result,
                "error": error,
                "calls": dict(counter.take()),
                "seconds": ended - began,
                "process_seconds": ended - STARTED,
            },
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
