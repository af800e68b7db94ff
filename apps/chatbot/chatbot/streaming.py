"""From generation events to what the API sends: stop sequences, the deadline, SSE chunks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from chatbot.engine import Event, Outcome

GRACE_S = 2.0
"""How long past the deadline to wait for the generation thread to notice it before giving up on it."""
POLL_S = 0.25
"""How often a waiting request checks whether its client is still connected."""

Gone = Callable[[], Awaitable[bool]]
"""Says whether the client has disconnected (Starlette's `Request.is_disconnected`)."""


class Running(Protocol):
    """What `events` needs of a running generation (`engine.Generation`)."""

    @property
    def prompt_tokens(self) -> int: ...

    def cancel(self) -> None: ...


class ClientGoneError(Exception):
    """The client disconnected while its answer was being generated."""


class EventQueue:
    """Carries events from the generation thread into the event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def put(self, event: Event) -> None:
        """Called from the generation thread."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def get(self, deadline: float, gone: Gone | None = None) -> Event | None:
        """The next event, or None when none came until shortly after `deadline`; raises
        `ClientGoneError` when `gone` says the client left while waiting."""
        while (remaining := deadline + GRACE_S - time.monotonic()) > 0:
            try:
                return await asyncio.wait_for(self.queue.get(), min(remaining, POLL_S) if gone else remaining)
            except TimeoutError:
                if gone is not None and await gone():
                    raise ClientGoneError from None
        return None

    async def outcome(self, timeout: float) -> Outcome | None:
        """The final `Outcome`, skipping text, or None when it does not come within `timeout`."""
        end = time.monotonic() + timeout
        while (remaining := end - time.monotonic()) > 0:
            try:
                event = await asyncio.wait_for(self.queue.get(), remaining)
            except TimeoutError:
                return None
            if isinstance(event, Outcome):
                return event
        return None


class StopScanner:
    """Holds back just enough text to cut the completion before the first stop sequence."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that is safe to send now."""
        if self.stopped:
            return ""
        self.buffer += text
        cuts = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if cuts:
            self.stopped = True
            out, self.buffer = self.buffer[: min(cuts)], ""
            return out
        safe = len(self.buffer) - self.hold
        out, self.buffer = self.buffer[:safe], self.buffer[safe:]
        return out

    def flush(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


async def events(
    queue: EventQueue,
    generation: Running,
    scanner: StopScanner,
    *,
    deadline: float,
    on_outcome: Callable[[Outcome], None],
    gone: Gone | None = None,
) -> AsyncIterator[str | Outcome]:
    """Text pieces to send, then one `Outcome`; ends generation when the consumer stops early or
    the client disconnects (the outcome then says `cancelled`)."""
    try:
        while True:
            try:
                event = await queue.get(deadline, gone)
            except ClientGoneError:
                generation.cancel()
                final = await queue.outcome(GRACE_S) or Outcome(generation.prompt_tokens, 0, "cancelled")
                event = replace(final, finish_reason="cancelled")
            if event is None:
                generation.cancel()
                event = Outcome(generation.prompt_tokens, 0, "timeout")
            if isinstance(event, Outcome):
                tail = scanner.flush()
                if tail:
                    yield tail
                stopped = scanner.stopped and event.finish_reason != "cancelled"
                outcome = replace(event, finish_reason="stop") if stopped else event
                on_outcome(outcome)
                yield outcome
                return
            text = scanner.feed(event)
            if scanner.stopped:
                generation.cancel()
            if text:
                yield text
    finally:
        generation.cancel()


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event carrying `payload` (JSON) or the literal `[DONE]`."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def chunk(base: dict[str, Any], delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice."""
    return base | {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}


def usage(outcome: Outcome) -> dict[str, int]:
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
    }
