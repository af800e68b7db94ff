"""One batch as one left-padded `model.generate`: each row streams, stops and ends on its own.

The prompts are left-padded with an attention mask, so a row's tokens are the ones it would get
alone (greedy). `BatchStreamer` is both the stopping criterion and the streamer of the call:
per step the criterion sees each row's new token (transformers calls it before the streamer) and
returns a per-row bool tensor: a row stops at end-of-sequence (unless it ignores it), at its own
`max_new_tokens`, at its deadline or when its client leaves; `generate` then pads that row until the
whole batch is done.
The streamer splits each step's ids per row, decodes each live row incrementally (whole words, as
transformers' `TextStreamer` does for one row; other rows once, at their end) and ends a row, with
its outcome, at the step it stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

log = logging.getLogger("chatbot.engine")

FinishReason = Literal["stop", "length", "timeout", "error", "cancelled"]


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

    def emit(self, text: str) -> None: ...

    def finish(self, completion_tokens: int, reason: FinishReason, error: str | None = None) -> None: ...


def generate_padded(model: Any, tokenizer: Any, rows: Sequence[Row], *, sampling: dict[str, Any]) -> None:
    """Generate for all `rows` in one call; every row ends with `finish`, whatever happens.
    `sampling` holds `generate`'s sampling arguments and `pad_token_id`; `max_new_tokens` is the rows' largest."""
    import torch
    from transformers import StoppingCriteriaList

    streamer = BatchStreamer(tokenizer, rows, eos_ids(model, tokenizer))
    try:
        ids, mask = left_pad([row.prompt_ids for row in rows], int(sampling["pad_token_id"]))
        kwargs = {
            **sampling,
            "max_new_tokens": max(row.max_new_tokens for row in rows),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([streamer]),
        }
        if any(row.ignore_eos for row in rows):  # the criterion ends the other rows at end-of-sequence
            kwargs["eos_token_id"] = None
        with torch.inference_mode():
            model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), **kwargs)
    except Exception as exc:  # reported as the rows' outcome; prompts are never logged
        log.exception("generation failed", extra={"error_type": type(exc).__name__, "batch_size": len(rows)})
        streamer.fail(type(exc).__name__)
    streamer.end()


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
    """A row's new tokens, the text already sent, and why it stopped (None while it runs)."""

    def __init__(self, row: Row) -> None:
        self.row = row
        self.steps = 0
        self.tokens: list[int] = []
        self.sent = 0
        self.reason: FinishReason | None = None
        self.closed = False

    def check(self, token: int, eos: set[int], now: float) -> None:
        """Count this step's token and decide whether the row stops here."""
        self.steps += 1
        if now > self.row.deadline:
            self.reason = "timeout"
        elif (token in eos and not self.row.ignore_eos) or self.row.aborted.is_set():
            self.reason = "stop"
        elif self.steps >= self.row.max_new_tokens:
            self.reason = "length"

    def text(self, tokenizer: Any, *, final: bool) -> str:
        """The decoded text not sent yet: whole words only, everything when `final`."""
        decoded = str(tokenizer.decode(self.tokens, skip_special_tokens=True))
        if final or decoded.endswith("\n"):
            out = decoded[self.sent :]
            self.tokens, self.sent = [], 0
            return out
        if decoded.endswith("\ufffd"):  # a character split across tokens: wait for the rest
            return ""
        end = len(decoded) if decoded and _is_cjk(decoded[-1]) else decoded.rfind(" ") + 1
        out = decoded[self.sent : end] if end > self.sent else ""
        self.sent += len(out)
        return out


class BatchStreamer:
    """The stopping criterion (`__call__`) and the streamer (`put`, `end`) of one batched `generate`."""

    def __init__(self, tokenizer: Any, rows: Sequence[Row], eos: set[int]) -> None:
        self.tokenizer, self.eos = tokenizer, eos
        self.states = [RowState(row) for row in rows]
        self._done: Any = None  # the last answer, made again only when a row stops

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        now, stopped = time.monotonic(), False
        for state, token in zip(self.states, input_ids[:, -1].tolist(), strict=True):
            if state.reason is None:
                state.check(int(token), self.eos, now)
                stopped = stopped or state.reason is not None
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
            state.tokens.append(int(token))
            final = state.reason is not None
            if (final or state.row.live) and (text := state.text(self.tokenizer, final=final)):
                state.row.emit(text)
            if final:
                self._close(state, state.reason or "stop")

    def end(self) -> None:
        """Ends the rows still open: `generate` stopped at the batch's length limit."""
        for state in self.states:
            if not state.closed:
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
