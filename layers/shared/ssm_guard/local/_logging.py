"""Log lines of the local emulator: a fixed message followed by `key=value` pairs.

Every module of the package logs through `log = get_logger(__name__)` with `extra={...}`; this
formatter prints those extras, so the message stays constant and the values stay searchable.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

ROOT = "ssm_guard.local"

# The attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class KeyValueFormatter(logging.Formatter):
    """`HH:MM:SS LEVEL message key=value ...`, values JSON-quoted when they need it."""

    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        pairs = [
            f"{key}={_render(value)}"
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        line = " ".join([base, *pairs])
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _render(value: Any) -> str:
    if isinstance(value, str) and value and not any(c in value for c in ' "=\n'):
        return value
    return json.dumps(value, default=str)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def configure(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the package's logs to `stream` (stderr by default); idempotent."""
    root = logging.getLogger(ROOT)
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_ssm_guard_local", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler._ssm_guard_local = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.propagate = False
    quiet_request_logs()


def quiet_request_logs() -> None:
    # NOTE: werkzeug logs one line per HTTP request; the emulator serves hundreds per test run,
    # so only its warnings are kept (werkzeug.serving uses the "werkzeug" logger).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
