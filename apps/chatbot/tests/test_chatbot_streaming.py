"""From generation events to answers: stop sequences and clients that leave early."""

from __future__ import annotations

import asyncio
import time

from chatbot.engine import Outcome
from chatbot.streaming import EventQueue, StopScanner, events


def test_stop_scanner_cuts_across_pieces_and_holds_back_only_what_it_must() -> None:
    scanner = StopScanner(["END", "\n\n"])

    assert scanner.feed("Hello wor") == "Hello w"
    assert scanner.feed("ld E") == "orld"
    assert scanner.feed("NDING") == " "
    assert scanner.stopped
    assert scanner.feed("more") == ""
    assert scanner.flush() == ""


def test_stop_scanner_without_stops_passes_everything() -> None:
    scanner = StopScanner([])

    assert scanner.feed("abc") == "abc"
    assert scanner.flush() == ""


class FakeGeneration:
    """Stands in for a running generation: cancelling it makes it end with 3 tokens."""

    prompt_tokens = 5

    def __init__(self, queue: EventQueue) -> None:
        self.queue, self.cancelled = queue, False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.queue.put(Outcome(5, 3, "stop"))


def test_a_client_that_leaves_cancels_its_generation() -> None:
    async def run() -> tuple[FakeGeneration, list[str | Outcome], list[Outcome]]:
        queue = EventQueue()
        generation = FakeGeneration(queue)
        seen: list[Outcome] = []

        async def gone() -> bool:
            return True

        stream = events(
            queue, generation, StopScanner([]), deadline=time.monotonic() + 30, on_outcome=seen.append, gone=gone
        )
        return generation, [event async for event in stream], seen

    generation, received, seen = asyncio.run(run())

    assert generation.cancelled
    assert received == [Outcome(5, 3, "cancelled")]
    assert seen == received
