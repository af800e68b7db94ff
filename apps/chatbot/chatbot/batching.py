"""Gathers concurrent requests into batches for one worker thread per model.

A request waits at most a short collection window (from its arrival) for others that can share
its batch: the same batch key (the sampling settings), up to `max_batch` of them. Requests that
arrive while a batch runs wait for the next one, unless the batch gives way to them (`requeue`: the
engine puts its unfinished requests back, first). The oldest request always goes first, so no
group starves another. A request whose key is None (a seeded one) runs alone at once. Requests
abandoned or out of time while queued are settled without running (`Queued.settle`).

With `idle_start`, the window is waited out only for requests known to be on their way: the app
announces each request when it arrives (`Scheduler.coming`) and releases that ticket when it submits
it (`Scheduler.submit(request, ticket)`) or drops it. When none is on its way, the worker starts the
pending requests at once: a lone request on an idle engine never waits. While some are, the window
runs from the latest arrival, so a burst whose requests come in over a while (each prepared in turn)
still shares one batch. A scheduler may follow the stage before it (`feeder`: generation follows the
question embeddings): while that stage runs a batch, and for a window after it, the requests on their
way are most likely in it, so a batch here waits for them (up to `hold_s` in all) instead of starting
with the few that came first and giving way to the rest a step later (its prompts read twice).

The generation engine (`engine.LanguageModel`) and the question embeddings of retrieval
(`retrieval.Retriever`) both batch through `Scheduler`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from appkit.batching import Collector

BatchEngine = Literal["padded"]
"""How a batch is run: `padded` is one left-padded `model.generate` per batch (`chatbot.padded`).
The seam for CUDA is here: a `continuous` engine would hand requests to transformers'
`generate_batch` (paged attention, rows joining and leaving between steps); it is not built."""


@dataclass(frozen=True)
class BatchConfig:
    """How requests are gathered: the collection window, the largest batch, the engine, and whether a
    request starts at once when no other is on its way (`idle_start`; else it always waits its window)."""

    window_s: float = 0.010
    max_batch: int = 16
    engine: BatchEngine = "padded"
    idle_start: bool = False
    hold_s: float = 0.100
    """The longest a batch waits for its feeder's batch to bring the requests on their way."""


class Queued(Protocol):
    """What the scheduler needs of a request."""

    @property
    def batch_key(self) -> Hashable | None:
        """Requests with equal keys may share a batch; None runs alone."""

    arrived: float
    """`time.monotonic()` when it was submitted (again, when its batch gave way: `requeue`)."""

    def settle(self, now: float) -> bool:
        """End the request without running it when it was abandoned or is out of time; whether it did."""


Q = TypeVar("Q", bound=Queued)


class Ticket:
    """One request announced to a scheduler (`Scheduler.coming`); `release` when it is submitted or
    will not be (idempotent, from any thread)."""

    def __init__(self, release: Callable[[], None] | None = None) -> None:
        self._release = release
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            release, self._release = self._release, None
        if release is not None:
            release()


class Scheduler(Collector[Q]):
    """Runs `run(batch)` on a worker thread for batches of submitted requests, one batch at a time."""

    def __init__(self, run: Callable[[list[Q]], None], config: BatchConfig, *, name: str = "generate-batches") -> None:
        super().__init__(name)
        self._run, self.config = run, config
        self._coming = 0  # guarded by the collector's condition, which `pick` runs under
        self.on_batch: Callable[[list[Q]], None] | None = None
        """Called with each batch just before it runs (metrics, tests)."""
        self.feeder: Scheduler[Any] | None = None
        """The stage whose batches bring this one its requests (see the module's doc)."""
        self.running = False
        self.ran_at = 0.0
        """Whether a batch runs, and when the last one ended: written by the worker, read by the next stage
        (`feeder`) as hints, without a lock."""

    @property
    def on_the_way(self) -> int:
        """Requests announced (`coming`) and not submitted or dropped yet."""
        return self._coming

    def coming(self) -> Ticket:
        """Announce a request that will be submitted soon: batches wait (up to the window) for it."""
        with self._cond:
            self._coming += 1
        return Ticket(self._arrived)

    def submit(self, request: Q, ticket: Ticket | None = None) -> None:
        """Queue `request`; its `ticket` (from `coming`) is released in the same step, so the worker never
        sees the request neither on its way nor queued (and starts a batch without it)."""
        with self._cond:  # re-entrant (an RLock): `Collector.submit` and the ticket take it again
            if ticket is not None:
                ticket.release()
            super().submit(request)

    def _arrived(self) -> None:
        """A ticket was released: the worker looks again (the last one may free a waiting batch)."""
        with self._cond:
            self._coming -= 1
            self._cond.notify()

    def waiting(self, key: Hashable | None) -> int:
        """Requests that could join a batch of `key` (none for one that runs alone): queued with that key,
        or announced and on their way (`coming`: most requests sample alike)."""
        if key is None:
            return 0
        with self._cond:
            return self._coming + sum(1 for r in self._pending if r.batch_key == key)

    def requeue(self, requests: list[Q]) -> None:
        """Queue again, ahead of the rest, the requests of a batch that gave way (the oldest), arriving
        now: their next batch waits its window for the requests on their way."""
        now = time.monotonic()
        with self._cond:
            for request in requests:
                request.arrived = now
            self._pending[:0] = requests
            self._cond.notify()

    def settled(self, request: Q, now: float) -> bool:
        return request.settle(now)

    def run(self, batch: list[Q]) -> None:
        """Run `batch`; its requests are settled when this returns, or queued again (`requeue`)."""
        self.running = True
        try:
            if self.on_batch is not None:
                self.on_batch(batch)
            self._run(batch)  # it settles its own rows, whatever happens
        finally:
            self.ran_at, self.running = time.monotonic(), False

    def pick(self, pending: list[Q], now: float) -> tuple[list[Q], float]:
        """The oldest request's batch when it is full, its window has passed or nobody else is on
        the way (`idle_start`), else when to look again."""
        head = pending[0]
        key = head.batch_key
        if key is None:
            return [head], now
        group = [r for r in pending if r.batch_key == key][: self.config.max_batch]
        if len(group) >= self.config.max_batch or (self.config.idle_start and self._coming == 0):
            return group, now
        ready_at = self._window_start(group) + self.config.window_s
        if now >= ready_at and (held := self._held(group[0], now)) is not None:
            ready_at = held
        return (group, now) if now >= ready_at else ([], ready_at)

    def _held(self, head: Q, now: float) -> float | None:
        """When to look again while the feeder may still bring the requests on their way: it runs a batch,
        or ended one less than a window ago; never past `hold_s` after the oldest request arrived (a new
        request wakes the worker before then)."""
        feeder, window = self.feeder, self.config.window_s
        until = head.arrived + self.config.hold_s
        if feeder is None or now >= until:
            return None
        if feeder.running:
            return min(until, now + window)
        return min(until, feeder.ran_at + window) if now < feeder.ran_at + window else None

    def _window_start(self, group: list[Q]) -> float:
        """The oldest request's arrival; with `idle_start` (others are on their way), the latest one's:
        the batch waits while they keep arriving, each within a window of the last (so at most
        `max_batch` windows in all, when it fills)."""
        if self.config.idle_start:
            return max(r.arrived for r in group)
        return group[0].arrived
