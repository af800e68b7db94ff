"""Chat: one question to one variant, streamed, ending in an `Answer` with its numbers and context.

`ChatEngine.stream` never raises for the failures a user meets (endpoint down, model or adapter
missing, timeout, Chroma collection missing): the final `Answer` carries `error` instead, so a
suite run or a side-by-side comparison goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appkit.budget import ContextLengthError, Counter, budget_rag_prompt, tokenizer_counter

from services.chat.local import (
    Generated,
    HoldGpu,
    LoadedModel,
    LocalModels,
    Messages,
    adapter_version,
    chat_prompt,
    generate_stream,
    resolve_model,
)
from services.chat.remote import EndpointPolicy
from services.chat.variant import Variant, render_prompt
from services.errors import ChatBackendError, WorkbenchError
from services.progress import CancelToken

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from services.rag.types import Hit


@dataclass(frozen=True)
class Answer:
    """A finished answer: text, the exact prompt sent, the retrieved chunks in it and timings.

    `hits` are the chunks the prompt holds: with a local model, those that fit its context (the last
    one's text cut when `context_trimmed` says retrieved text was left out; see `budget_messages`).
    `latency_s` runs from the question to the last piece, retrieval included and model loading
    not; `ttft_s` to the first piece; `tokens_per_s` is the decode rate after the first piece.
    """

    text: str
    prompt: str
    hits: list[Hit]
    latency_s: float
    ttft_s: float | None
    tokens: int
    tokens_per_s: float
    error: str | None = None
    context_trimmed: bool = False


@dataclass(frozen=True)
class ContextLimits:
    """What budgets a prompt: the chat model's token counter (its tokenizer and chat template) and context length."""

    count: Counter
    context_length: int


@dataclass
class _Clock:
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None

    def piece(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def answer(self, text: str, hits: list[Hit], done: Generated, *, trimmed: bool = False) -> Answer:
        latency = time.perf_counter() - self.started
        ttft = None if self.first is None else self.first - self.started
        rate = _rate(done.tokens, latency, ttft)
        return Answer(text, done.prompt, hits, latency, ttft, done.tokens, rate, done.error, trimmed)


def _rate(tokens: int, latency: float, ttft: float | None) -> float:
    """Decode speed: tokens after the first over the time after the first (overall rate as a fallback)."""
    if ttft is not None and tokens > 1 and latency > ttft:
        return (tokens - 1) / (latency - ttft)
    return tokens / latency if latency > 0 else 0.0


class ChatEngine:
    """Answers questions with variants; keeps local models loaded between turns (one base per model).

    `endpoints`: where an OpenAI-compatible variant may send its key (default: nowhere).
    """

    def __init__(
        self,
        *,
        cache_dir: Path,
        rag_client_factory: Callable[[], ClientAPI] | None = None,
        endpoints: EndpointPolicy | None = None,
        hold_gpu: HoldGpu | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.endpoints = endpoints or EndpointPolicy()
        self.models = LocalModels(cache_dir=cache_dir, hold_gpu=hold_gpu)
        self._rag_client_factory = rag_client_factory
        self._rag_client: ClientAPI | None = None

    def stream(
        self,
        variant: Variant,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        cancel: CancelToken | None = None,
    ) -> Iterator[str | Answer]:
        """Text pieces as generated, then exactly one `Answer` (with `error` set instead of raising)."""
        cancel = cancel or CancelToken()
        hits: list[Hit] = []
        pieces: list[str] = []
        trimmed = False
        clock = _Clock()
        try:
            variant = self.endpoints.resolve(variant)
            backend, limits = self._prepare(variant)
            clock = _Clock()  # model loading is not part of an answer's latency
            hits = self.retrieve(variant, question)
            turn = budget_messages(variant, question, hits, history, limits)
            hits, trimmed = turn.hits, turn.context_trimmed
            if turn.answer_room is not None and turn.answer_room < variant.params.max_new_tokens:
                params = variant.params.model_copy(update={"max_new_tokens": turn.answer_room})
                variant = variant.model_copy(update={"params": params})  # the answer fits the context
            for item in backend(variant, turn.messages, cancel):
                if isinstance(item, Generated):
                    yield clock.answer("".join(pieces), hits, item, trimmed=trimmed)
                    return
                clock.piece()
                pieces.append(item)
                yield item
        except Exception as exc:  # the answer reports it; a compare or suite run goes on
            yield clock.answer("".join(pieces), hits, Generated("", 0, _message(exc)), trimmed=trimmed)

    def _prepare(self, variant: Variant) -> tuple[Backend, ContextLimits | None]:
        """The backend that answers the variant, and the limits its prompts are budgeted to (None:
        unknown, as for an OpenAI-compatible endpoint, whose tokenizer is not here)."""
        if variant.backend == "openai":
            from services.chat.remote import stream_chat

            return stream_chat, None
        loaded = self.models.get(variant)
        return (lambda v, messages, cancel: generate_stream(loaded, v, messages, cancel)), local_limits(loaded)

    def retrieve(self, variant: Variant, question: str) -> list[Hit]:
        """Top-k chunks for the question from the variant's collection ([] with RAG off)."""
        if variant.rag is None:
            return []
        from services.rag.query import retrieve

        rag = variant.rag
        return retrieve(self._client(), rag.collection, question, k=rag.k, where=rag.where, cache_dir=self.cache_dir)

    def _client(self) -> ClientAPI:
        if self._rag_client is None:
            if self._rag_client_factory is None:
                raise ChatBackendError("RAG is on but no Chroma client is configured", hint="see the rag settings")
            self._rag_client = self._rag_client_factory()
        return self._rag_client

    def describe(self, variant: Variant) -> dict[str, Any]:
        """The versions of a variant's inputs (model revision, adapter weights, collection) for a run record."""
        info: dict[str, Any] = {"backend": variant.backend, "model": variant.model}
        try:
            if variant.backend == "local":
                info["revision"] = resolve_model(variant.model, variant.revision, cache_dir=self.cache_dir)[1]
                if variant.adapter:
                    info["adapter"] = {"path": variant.adapter, "sha256": adapter_version(Path(variant.adapter))}
            else:
                info["endpoint"] = self.endpoints.resolve(variant).endpoint
            if variant.rag is not None:
                info["collection"] = self._collection_version(variant.rag.collection)
        except Exception as exc:  # a missing input is recorded, and its cases fail with the reason
            info["error"] = _message(exc)
        return info

    def _collection_version(self, name: str) -> dict[str, Any]:
        collection = self._client().get_collection(name)
        return {"name": name, "count": collection.count(), "metadata": dict(collection.metadata or {})}

    def close(self) -> None:
        self.models.close()
        self._rag_client = None


Backend = Callable[[Variant, Messages, CancelToken], Iterator[str | Generated]]


def local_limits(loaded: LoadedModel) -> ContextLimits | None:
    """A local model's token counter and context length (None when its config does not say)."""
    length = getattr(loaded.model.config, "max_position_embeddings", None)
    if not isinstance(length, int):
        return None
    tokenizer = loaded.tokenizer
    return ContextLimits(tokenizer_counter(tokenizer, lambda messages: chat_prompt(tokenizer, messages)), length)


@dataclass(frozen=True)
class PromptTurn:
    """One turn's messages, the hits they hold, whether retrieved text was left out, and the room the
    prompt leaves for the answer (None when not budgeted)."""

    messages: Messages
    hits: list[Hit]
    context_trimmed: bool = False
    answer_room: int | None = None


def budget_messages(
    variant: Variant,
    question: str,
    hits: list[Hit],
    history: Sequence[tuple[str, str]],
    limits: ContextLimits | None,
) -> PromptTurn:
    """The messages for a turn and what they hold of the retrieved `hits`.

    With RAG on and known limits (a local model), the prompt is budgeted as the deployed chatbot
    budgets it (`appkit.budget`): the chunks that fit next to the question and the answer, best
    first, the last one cut at a sentence boundary. Without limits (an OpenAI-compatible endpoint:
    its tokenizer and context length are not known here) every chunk goes, unbudgeted, as before,
    and the server refuses a prompt too long for it."""
    if variant.rag is None or limits is None:
        return PromptTurn(build_messages(variant, render_prompt(variant, question, hits), history), hits)
    conversation = build_messages(variant, question, history)
    try:
        budget = budget_rag_prompt(
            limits.count,
            context_length=limits.context_length,
            max_tokens=variant.params.max_new_tokens,
            system_prompt=variant.system_prompt,
            conversation=conversation,
            template=variant.template,
            chunks=hits,
        )
    except ContextLengthError as exc:
        raise ChatBackendError(str(exc), hint="ask a shorter question or clear the conversation") from None
    used = hits[: len(budget.used)]
    if budget.cut:
        used[-1] = replace(used[-1], text=budget.used[-1].text)
    return PromptTurn(budget.messages, used, budget.trimmed, budget.answer_room)


def build_messages(variant: Variant, user: str, history: Sequence[tuple[str, str]]) -> Messages:
    """System prompt, earlier turns (question, answer), then this turn's rendered prompt."""
    messages = [{"role": "system", "content": variant.system_prompt}] if variant.system_prompt else []
    for asked, answered in history:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    return [*messages, {"role": "user", "content": user}]


def _message(exc: Exception) -> str:
    if isinstance(exc, WorkbenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def collect(stream: Iterator[str | Answer]) -> Answer:
    """Drain a stream and return its final Answer."""
    for item in stream:
        if isinstance(item, Answer):
            return item
    raise ChatBackendError("stream ended without an answer")
