"""Delayed actions of the emulator (an endpoint leaving `Creating`, a fleet being replaced).

One daemon thread runs the actions in due order, so the moto request that scheduled them answers
at once, as the real API does. A delay of zero runs the action inline, before that request
answers: tests that want no waiting get a deterministic order.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from ssm_guard.local._logging import get_logger

log = get_logger(__name__)


class Timeline:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._running = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="ssm-guard-timeline", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, action: Callable[[], None], *, name: str) -> None:
        """Run `action` after `delay` seconds; inline when `delay` is zero or less."""
        if delay <= 0:
            self._run(name, action)
            return
        with self._cond:
            heapq.heappush(
                self._heap, (time.monotonic() + delay, next(self._counter), name, action)
            )
            self._cond.notify_all()

    def advance(self) -> int:
        """Run every scheduled action now, in due order, as if their time had come; returns
        how many ran. Tests use it to hold an endpoint in `Creating` as long as they need."""
        ran = 0
        while True:
            with self._cond:
                if not self._heap:
                    break
                _, _, name, action = heapq.heappop(self._heap)
                self._running += 1
            try:
                self._run(name, action)
                ran += 1
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
        return ran

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._running

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is scheduled or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, name, action = heapq.heappop(self._heap)
                self._running += 1
            try:
                self._run(name, action)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    @staticmethod
    def _run(name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # one failed action must not stop the timeline
            log.exception("scheduled action failed", extra={"action": name})
