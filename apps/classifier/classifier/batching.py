"""Gathers the texts of concurrent requests into shared forward passes, on one worker thread.

A request waits at most a short collection window (from its arrival) for others: requests for
the same model and `max_length` share a forward pass while their texts fit in `batch_size`. A
request with more texts than that runs alone, in passes of `batch_size`, as it would without
batching. The oldest request goes first; one abandoned or out of time while queued never runs.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from appkit.batching import Collector

from classifier.engine import Classifier, Scores

log = logging.getLogger("classifier.batching")


@dataclass(eq=False)
class Job:
    """One request's texts and where its scores go (None: out of time)."""

    model: Classifier
    texts: list[str]
    max_length: int
    deadline: float
    arrived: float = field(default_factory=time.monotonic)
    future: Future[Scores | None] = field(default_factory=Future)

    @property
    def key(self) -> tuple[int, int]:
        return id(self.model), self.max_length


class Batcher(Collector[Job]):
    """Classifies submitted requests in shared forward passes, one batch at a time."""

    def __init__(self, *, window_s: float, batch_size: int) -> None:
        super().__init__("classify-batches")
        self.window_s, self.batch_size = window_s, batch_size
        self.batches = 0
        """Forward-pass batches run so far (jobs gathered together count once)."""

    def classify(
        self, model: Classifier, texts: list[str], *, max_length: int, deadline: float
    ) -> Future[Scores | None]:
        """Queue `texts`; the future gets their scores, or None when the deadline passes first."""
        job = Job(model, list(texts), max_length, deadline)
        self.submit(job)
        return job.future

    def settled(self, job: Job, now: float) -> bool:
        return _settled(job, now)

    def run(self, batch: list[Job]) -> None:
        running = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if running:
            self.batches += 1
            self._run(running)

    def failed(self, batch: list[Job], exc: Exception) -> None:
        """Each request of the batch gets the error; the worker goes on."""
        log.exception("classification failed", extra={"error_type": type(exc).__name__})
        for job in batch:
            if not job.future.done():
                job.future.set_exception(exc)

    def pick(self, pending: list[Job], now: float) -> tuple[list[Job], float]:
        """The oldest request with the ones that fit beside it, when full or its window has passed."""
        head = pending[0]
        batch, total = [head], len(head.texts)
        for job in pending[1:]:
            if job.key == head.key and total + len(job.texts) <= self.batch_size:
                batch.append(job)
                total += len(job.texts)
        if total >= self.batch_size or now >= head.arrived + self.window_s:
            return batch, now
        return [], head.arrived + self.window_s

    def _run(self, batch: list[Job]) -> None:
        head = batch[0]
        if len(batch) == 1:  # alone, perhaps more texts than one pass holds
            scores = head.model.classify(
                head.texts, max_length=head.max_length, batch_size=self.batch_size, deadline=head.deadline
            )
            head.future.set_result(scores)
            return
        texts = [text for job in batch for text in job.texts]
        probabilities, tokens = head.model.forward(texts, max_length=head.max_length)
        start = 0
        for job in batch:
            end = start + len(job.texts)
            job.future.set_result(Scores(probabilities[start:end], sum(tokens[start:end])))
            start = end


def _settled(job: Job, now: float) -> bool:
    """Ends a queued job that was abandoned (its future cancelled) or ran out of time; whether it did."""
    if job.future.cancelled():
        return True
    if now > job.deadline:
        if job.future.set_running_or_notify_cancel():
            job.future.set_result(None)
        return True
    return False
