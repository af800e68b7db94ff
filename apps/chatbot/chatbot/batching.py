"""Gathers concurrent requests into batches for one worker thread per model.

A request waits at most a short collection window (from its arrival) for others that can share
its batch: the same batch key (the sampling settings), up to `max_batch` of them. Requests that
arrive while a batch runs wait for the next one. The oldest request always goes first, so no
group starves another. A request whose key is None (a seeded one) runs alone at once. Requests
abandoned or out of time while queued are settled without running (`Queued.settle`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

log = logging.getLogger("chatbot.batching")

IDLE_S = 5.0
"""How long the worker thread waits for work before it ends (the next request starts a new one)."""

BatchEngine = Literal["padded"]
"""How a batch is run: `padded` is one left-padded `model.generate` per batch (`chatbot.padded`).
The seam for CUDA is here: a `continuous` engine would hand requests to transformers'
`generate_batch` (paged attention, rows joining and leaving between steps); it is not built."""


@dataclass(frozen=True)
class BatchConfig:
    """How requests are gathered: the collection window, the largest batch, the engine."""

    window_s: float = 0.010
    max_batch: int = 16
    engine: BatchEngine = "padded"


class Queued(Protocol):
    """What the scheduler needs of a request."""

    @property
    def batch_key(self) -> Hashable | None:
        """Requests with equal keys may share a batch; None runs alone."""

    @property
    def arrived(self) -> float:
        """`time.monotonic()` when it was submitted."""

    def settle(self, now: float) -> bool:
        """End the request without running it when it was abandoned or is out of time; whether it did."""


Q = TypeVar("Q", bound=Queued)


class Scheduler(Generic[Q]):
    """Runs `run(batch)` on a worker thread for batches of submitted requests, one batch at a time."""

    def __init__(self, run: Callable[[list[Q]], None], config: BatchConfig) -> None:
        self.run, self.config = run, config
        self.on_batch: Callable[[list[Q]], None] | None = None
        """Called with each batch just before it runs (metrics, tests)."""
        self._pending: list[Q] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def submit(self, request: Q) -> None:
        with self._cond:
            self._pending.append(request)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="generate-batches", daemon=True)
                self._worker.start()
            self._cond.notify()

    def _work(self) -> None:
        while (batch := self._next()) is not None:
            try:
                if self.on_batch is not None:
                    self.on_batch(batch)
                self.run(batch)
            except Exception:  # `run` settles its own rows; this keeps the worker alive whatever happens
                log.exception("batch failed")

    def _next(self) -> list[Q] | None:
        """The next batch to run, or None when the worker has been idle long enough to end."""
        with self._cond:
            while True:
                now = time.monotonic()
                self._pending = [r for r in self._pending if not r.settle(now)]
                if not self._pending:
                    if not self._cond.wait(IDLE_S) and not self._pending:
                        self._worker = None
                        return None
                    continue
                batch, ready_at = self._pick(now)
                if batch:
                    taken = {id(r) for r in batch}
                    self._pending = [r for r in self._pending if id(r) not in taken]
                    return batch
                self._cond.wait(ready_at - now)

    def _pick(self, now: float) -> tuple[list[Q], float]:
        """The oldest request's batch when it is full or its window has passed, else when to look again."""
        head = self._pending[0]
        key = head.batch_key
        if key is None:
            return [head], now
        group = [r for r in self._pending if r.batch_key == key][: self.config.max_batch]
        ready_at = head.arrived + self.config.window_s
        if len(group) >= self.config.max_batch or now >= ready_at:
            return group, now
        return [], ready_at
