"""Gathers concurrent requests into batches for one worker thread per model.

A request waits at most a short collection window (from its arrival) for others that can share
its batch: the same batch key (the sampling settings), up to `max_batch` of them. Requests that
arrive while a batch runs wait for the next one. The oldest request always goes first, so no
group starves another. A request whose key is None (a seeded one) runs alone at once. Requests
abandoned or out of time while queued are settled without running (`Queued.settle`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from appkit.batching import Collector

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


class Scheduler(Collector[Q]):
    """Runs `run(batch)` on a worker thread for batches of submitted requests, one batch at a time."""

    def __init__(self, run: Callable[[list[Q]], None], config: BatchConfig) -> None:
        super().__init__("generate-batches")
        self._run, self.config = run, config
        self.on_batch: Callable[[list[Q]], None] | None = None
        """Called with each batch just before it runs (metrics, tests)."""

    def settled(self, request: Q, now: float) -> bool:
        return request.settle(now)

    def run(self, batch: list[Q]) -> None:
        if self.on_batch is not None:
            self.on_batch(batch)
        self._run(batch)  # it settles its own rows, whatever happens

    def pick(self, pending: list[Q], now: float) -> tuple[list[Q], float]:
        """The oldest request's batch when it is full or its window has passed, else when to look again."""
        head = pending[0]
        key = head.batch_key
        if key is None:
            return [head], now
        group = [r for r in pending if r.batch_key == key][: self.config.max_batch]
        ready_at = head.arrived + self.config.window_s
        if len(group) >= self.config.max_batch or now >= ready_at:
            return group, now
        return [], ready_at
