"""Writing log lines into the emulator's CloudWatch Logs (moto's logs backend, in process)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ssm_guard.local.runtime import Runtime


def put_lines(
    runtime: Runtime,
    group: str,
    stream: str,
    lines: list[str],
    *,
    account_id: str | None = None,
    region: str | None = None,
) -> None:
    """Append `lines` to `group`/`stream`, creating both if needed."""
    from moto.logs.models import logs_backends

    account = account_id or runtime.settings.account_id
    backend = logs_backends[account][region or runtime.settings.region]
    with runtime.lock:
        if group not in backend.groups:
            backend.create_log_group(group, tags={})
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        if events:
            backend.put_log_events(group, stream, events)
