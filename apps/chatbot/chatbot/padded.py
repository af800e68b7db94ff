"""One batch as one left-padded `model.generate`: each row streams, stops and ends on its own.

The prompts are left-padded with an attention mask, so a row's tokens are the ones it would get
alone (greedy). `BatchStreamer` is both the stopping criterion and the streamer of the call:
per step the criterion sees each row's new token (transformers calls it before the streamer) and
returns a per-row bool tensor: a row stops at end-of-sequence (unless it ignores it), at its own
`max_new_tokens`, at its deadline or when its client leaves (the only end-of-sequence check: transformers'
own is off); `generate` runs that row on, unread, until the whole batch is done.
The streamer splits each step's ids per row, decodes each live row incrementally (whole words, as
transformers' `TextStreamer` does for one row; other rows once, at their end) and ends a row, with
its outcome, at the step it stops.

A batch gives way to requests waiting to join it (`gives_way`): it stops, and its open rows, their
tokens so far kept (`Progress`), are queued again to run with the newcomers, reading those tokens
after their prompt (vLLM's preemption by recomputation). So a request that arrived at an idle engine,
a moment before a burst, does not make the whole burst wait for its answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

log = logging.getLogger("chatbot.engine")

FinishReason = Literal["stop", "length", "timeout", "error", "cancelled"]


@dataclass
class Progress:
    """A row's new tokens and the state of its text, kept when its batch gives way."""

    tokens: list[int] = field(default_factory=list)
    """Every new token so far: a later batch reads them after the prompt."""
    unsent: list[int] = field(default_factory=list)
    """The tokens whose text is not all sent yet."""
    sent: int = 0
    """Characters of `unsent`'s text already sent."""
    gave_way: bool = False
    """Its batch gave way once: it never does again (each time costs reading its tokens again)."""


class Row(Protocol):
    """One request in a batch (`engine.Generation`)."""

    @property
    def prompt_ids(self) -> list[int]: ...

    @property
    def max_new_tokens(self) -> int: ...

    @property
    def ignore_eos(self) -> bool:
        """Run to `max_new_tokens` past end-of-sequence."""

    @property
    def deadline(self) -> float: ...

    @property
    def aborted(self) -> threading.Event: ...

    @property
    def live(self) -> bool:
        """Text as it comes; else once, when the row ends."""

    @property
    def progress(self) -> Progress: ...

    def emit(self, text: str) -> None: ...

    def finish(self, completion_tokens: int, reason: FinishReason, error: str | None = None) -> None: ...


R = TypeVar("R", bound=Row)


def generate_padded(
    model: Any,
    tokenizer: Any,
    rows: Sequence[R],
    *,
    sampling: dict[str, Any],
    waiting: Callable[[], int] = lambda: 0,
) -> list[R]:
    """Generate for all `rows` in one call. Every row ends with `finish`, whatever happens, except when
    the batch gives way to the `waiting()` requests (`gives_way`): the rows still open are returned, to
    be queued again. `sampling` holds `generate`'s sampling arguments and `pad_token_id`."""
    import torch
    from transformers import StoppingCriteriaList

    streamer = BatchStreamer(tokenizer, rows, eos_ids(model, tokenizer), waiting)
    try:
        ids, mask = left_pad([[*row.prompt_ids, *row.progress.tokens] for row in rows], int(sampling["pad_token_id"]))
        kwargs = {
            **sampling,
            "max_new_tokens": max(row.max_new_tokens - len(row.progress.tokens) for row in rows),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([streamer]),
            "eos_token_id": None,  # the criterion ends each row at its end-of-sequence; transformers' own
            # check would cost as much again per step (a lone 32-token answer: ~1 ms more than `generate`)
        }
        with torch.inference_mode():
            model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), **kwargs)
    except Exception as exc:  # reported as the rows' outcome; prompts are never logged
        log.exception("generation failed", extra={"error_type": type(exc).__name__, "batch_size": len(rows)})
        streamer.fail(type(exc).__name__)
    streamer.end()
    return [row for row, state in zip(rows, streamer.states, strict=True) if not state.closed]


def left_pad(prompts: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any]:
    """`input_ids` and `attention_mask` of the prompts, padded on the left to the longest."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        if prompt:
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
    return ids, mask


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-sequence ids: the model's generation config's and the tokenizer's."""
    found = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(found) if isinstance(found, list) else set() if found is None else {int(found)}
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


class RowState:
    """A row in this batch: its progress (from earlier batches too) and why it stopped (None while it runs)."""

    def __init__(self, row: Row) -> None:
        self.row, self.progress = row, row.progress
        self.reason: FinishReason | None = None
        self.closed = False

    @property
    def steps(self) -> int:
        return len(self.progress.tokens)

    def check(self, token: int, eos: set[int], now: float) -> None:
        """Take this step's token and decide whether the row stops here."""
        self.progress.tokens.append(token)
        if now > self.row.deadline:
            self.reason = "timeout"
        elif (token in eos and not self.row.ignore_eos) or self.row.aborted.is_set():
            self.reason = "stop"
        elif self.steps >= self.row.max_new_tokens:
            self.reason = "length"

    def text(self, tokenizer: Any, *, final: bool) -> str:
        """The decoded text not sent yet: whole words only, everything when `final`."""
        progress = self.progress
        decoded = str(tokenizer.decode(progress.unsent, skip_special_tokens=True))
        if final or decoded.endswith("\n"):
            out = decoded[progress.sent :]
            progress.unsent, progress.sent = [], 0
            return out
        if decoded.endswith("\ufffd"):  # a character split across tokens: wait for the rest
            return ""
        end = len(decoded) if decoded and _is_cjk(decoded[-1]) else decoded.rfind(" ") + 1
        out = decoded[progress.sent : end] if end > progress.sent else ""
        progress.sent += len(out)
        return out


def gives_way(states: Sequence[RowState], waiting: Callable[[], int]) -> bool:
    """Whether a batch stops for the requests waiting to join it: they are at least as many as its open
    rows, and each of those has more than half of its tokens to come and never gave way before. Then the
    steps it saves (about half of the batch's, and a step costs nearly as much for one row as for
    sixteen on the CPU) outweigh reading its rows' tokens again."""
    running = [state for state in states if state.reason is None]
    if not running or any(s.progress.gave_way or 2 * s.steps >= s.row.max_new_tokens for s in running):
        return False
    return waiting() >= len(running)


class BatchStreamer:
    """The stopping criterion (`__call__`) and the streamer (`put`, `end`) of one batched `generate`."""

    def __init__(
        self, tokenizer: Any, rows: Sequence[Row], eos: set[int], waiting: Callable[[], int] = lambda: 0
    ) -> None:
        self.tokenizer, self.eos, self.waiting = tokenizer, eos, waiting
        self.states = [RowState(row) for row in rows]
        self.gave_way = False
        self._done: Any = None  # the last answer, made again only when a row stops

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.gave_way:  # a step past the one it gave way at (a deferred stop check on CUDA): not taken
            return torch.ones(len(self.states), dtype=torch.bool, device=input_ids.device)
        now, stopped = time.monotonic(), False
        for state, token in zip(self.states, input_ids[:, -1].tolist(), strict=True):
            if state.reason is None:
                state.check(int(token), self.eos, now)
                stopped = stopped or state.reason is not None
        if gives_way(self.states, self.waiting):
            self.gave_way = True
            return torch.ones(len(self.states), dtype=torch.bool, device=input_ids.device)
        if stopped or self._done is None:
            done = [state.reason is not None for state in self.states]
            self._done = torch.tensor(done, dtype=torch.bool, device=input_ids.device)
        return self._done

    def put(self, value: Any) -> None:
        if value.dim() > 1:  # the prompts, sent once before the first step
            return
        for state, token in zip(self.states, value.tolist(), strict=True):
            if state.closed:
                continue
            state.progress.unsent.append(int(token))
            final = state.reason is not None
            if (final or state.row.live) and (text := state.text(self.tokenizer, final=final)):
                state.row.emit(text)
            if final:
                self._close(state, state.reason or "stop")

    def end(self) -> None:
        """Ends the rows still open (`generate` stopped at the batch's length limit), unless the batch
        gave way: then they stay open, to be queued again."""
        for state in self.states:
            if state.closed:
                continue
            if self.gave_way:
                state.progress.gave_way = True
                continue
            if text := state.text(self.tokenizer, final=True):
                state.row.emit(text)
            self._close(state, state.reason or "length")

    def fail(self, error: str) -> None:
        for state in self.states:
            if not state.closed:
                state.closed = True
                state.row.finish(state.steps, "error", error)

    def _close(self, state: RowState, reason: FinishReason) -> None:
        state.closed = True
        state.row.finish(state.steps, reason)


def _is_cjk(char: str) -> bool:
    """A CJK ideograph: such text has no spaces, so it is sent as it comes (as `TextStreamer` does)."""
    cp = ord(char)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2FA1F or 0xF900 <= cp <= 0xFAFF
