"""The kit's collector: requests gathered within a window run as one batch; settled ones never run."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from appkit.batching import Collector


@dataclass(eq=False)
class Request:
    name: str
    abandoned: bool = False
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)


class Pairs(Collector[Request]):
    """Runs requests two at a time; a lone request waits until the far window passes."""

    def __init__(self, window_s: float) -> None:
        super().__init__("test-batches")
        self.window_s = window_s
        self.batches: list[list[str]] = []

    def settled(self, request: Request, now: float) -> bool:
        if request.abandoned:
            request.done.set()
        return request.abandoned

    def pick(self, pending: list[Request], now: float) -> tuple[list[Request], float]:
        head = pending[0]
        if len(pending) >= 2 or now >= head.arrived + self.window_s:
            return pending[:2], now
        return [], head.arrived + self.window_s

    def run(self, batch: list[Request]) -> None:
        self.batches.append([r.name for r in batch])
        for request in batch:
            request.done.set()


def test_requests_within_the_window_share_a_batch_and_settled_ones_never_run() -> None:
    pairs = Pairs(window_s=600)
    gone, first, second = Request("gone", abandoned=True), Request("a"), Request("b")
    for request in (gone, first, second):
        pairs.submit(request)
    assert all(r.done.wait(30) for r in (gone, first, second))
    assert pairs.batches == [["a", "b"]]


def test_a_failing_batch_does_not_stop_the_worker() -> None:
    class Flaky(Pairs):
        def run(self, batch: list[Request]) -> None:
            if batch[0].name == "boom":
                batch[0].done.set()
                raise RuntimeError("boom")
            super().run(batch)

    flaky = Flaky(window_s=0)
    boom, after = Request("boom"), Request("after")
    flaky.submit(boom)
    assert boom.done.wait(30)
    flaky.submit(after)
    assert after.done.wait(30)
    assert flaky.batches == [["after"]]
