"""Gathering concurrent requests into batches, one batch at a time on a worker thread.

The worker starts with the first request and ends after `IDLE_S` without work. Each turn drops
the requests that no longer wait (`settled`: abandoned or out of time), then asks `pick` for the
batch to run now; when there is none yet, it sleeps until the time `pick` names (the oldest
request's collection window) or until a new request arrives. An app subclasses `Collector` with
its own `settled`, `pick` and `run`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Generic, TypeVar

log = logging.getLogger("appkit.batching")

IDLE_S = 5.0
"""How long the worker thread waits for work before it ends (the next request starts a new one)."""

R = TypeVar("R")


class Collector(Generic[R]):
    """Runs batches of submitted requests on a worker thread named `name`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pending: list[R] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def submit(self, request: R) -> None:
        with self._cond:
            self._pending.append(request)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._worker.start()
            self._cond.notify()

    def settled(self, request: R, now: float) -> bool:
        """Whether `request` no longer waits (it was ended without running); it is dropped."""
        raise NotImplementedError

    def pick(self, pending: list[R], now: float) -> tuple[list[R], float]:
        """The batch to run now, oldest first; or `[]` and the monotonic time to look again."""
        raise NotImplementedError

    def run(self, batch: list[R]) -> None:
        """Run one batch; every request in it must be settled when this returns, or queued again."""
        raise NotImplementedError

    def failed(self, batch: list[R], exc: Exception) -> None:
        """`run` raised: the worker goes on; by default the error is only logged."""
        log.exception("batch failed", exc_info=exc)

    def _work(self) -> None:
        while (batch := self._next()) is not None:
            try:
                self.run(batch)
            except Exception as exc:
                self.failed(batch, exc)

    def _next(self) -> list[R] | None:
        """The next batch to run, or None when the worker has been idle long enough to end."""
        with self._cond:
            while True:
                now = time.monotonic()
                self._pending = [r for r in self._pending if not self.settled(r, now)]
                if not self._pending:
                    if not self._cond.wait(IDLE_S) and not self._pending:
                        self._worker = None
                        return None
                    continue
                batch, ready_at = self.pick(self._pending, now)
                if batch:
                    taken = {id(r) for r in batch}
                    self._pending = [r for r in self._pending if id(r) not in taken]
                    return batch
                self._cond.wait(ready_at - now)
