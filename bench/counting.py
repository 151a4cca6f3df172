"""Counting the AWS calls a piece of code makes, on the client side, with a botocore event hook.

Every botocore client created while `counting()` is active gets a `before-call` handler, which
fires once per API call (retries are not calls; the server-side log in `bench.emulator` sees
those). Patching `Session.create_client` catches clients made anywhere in the process, including
those Powertools creates for itself, not only the ones from `ssm_guard.clients`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session

from ssm_guard import clients


class CallCounter:
    """`service:Operation` -> calls, thread-safe."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _on_call(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.signing_name}:{model.name}"
        with self._lock:
            self.calls[name] += 1

    def take(self) -> Counter[str]:
        """The calls counted so far, and start again from zero."""
        with self._lock:
            taken, self.calls = self.calls, Counter()
        return taken


@contextmanager
def counting(*, fresh_clients: bool = True) -> Iterator[CallCounter]:
    """Count every call of the clients created inside the block.

    `fresh_clients` empties the guard's client cache first, so the guard's clients are created
    (and hooked) inside the block, as in a Lambda cold start.
    """
    counter = CallCounter()
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call", counter._on_call)  # noqa: SLF001
        return client

    if fresh_clients:
        clients.client.cache_clear()
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        clients.client.cache_clear()
