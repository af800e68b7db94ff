"""The RAG prompt budget, the one the workbench's Playground and the deployed chatbot both use: the
retrieved chunks that fit the chat model's context next to the question and the answer.

Tokens are counted with the chat model's own tokenizer (`Counter`: a text, or the whole chat
rendered with its template), never estimated from the embedding model's chunk sizes. The system
prompt, the conversation and the question always stay; chunks join best first while the rendered
prompt leaves room for the answer; the first one that does not fit is cut at a sentence boundary
(or dropped when not even one sentence fits), and the rest are left out. Only a question that
leaves no room for an answer on its own is refused (`ContextLengthError`).

The answer's room: `max_tokens`, except that retrieved context may always take `context_share` of
what the question leaves (half by default), so a long `max_tokens` on a short context (a 256-token
answer on a 512-position model) does not crowd out every chunk; the caller then shortens the
answer to the room left (`Budgeted.answer_room`), as it would for any long prompt.

Tokenizer calls: one for the question alone, one per chunk taken and one for the first that does not
fit (its size, counted once), one per step of a binary search over that chunk's sentences, then one
to verify the final prompt (a few more only when tokens merging across chunk borders make the sum of
the parts an underestimate).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from appkit.prompt import Chunk, clean_source, rag_prompt, without_markers

Message = dict[str, str]
Counter = Callable[[str | Sequence[Mapping[str, str]]], int]
"""Tokens of a text (as it appears inside a prompt) or of chat messages rendered with the chat
model's template, generation prompt and special tokens included."""

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*")


class ContextLengthError(ValueError):
    """The question (with the system prompt and the conversation) leaves no room for an answer."""

    def __init__(self, prompt_tokens: int, context_length: int, min_answer_tokens: int) -> None:
        self.prompt_tokens, self.context_length = prompt_tokens, context_length
        super().__init__(
            f"the prompt is {prompt_tokens} tokens without any retrieved context; this model reads at most "
            f"{context_length}, answer included ({min_answer_tokens} at least): "
            "shorten the question or the conversation"
        )


@dataclass(frozen=True)
class Passage:
    """A chunk as it went into the prompt: its text without fence markers (and cut when it was
    trimmed), its source as retrieved."""

    text: str
    source: str


@dataclass(frozen=True)
class Budgeted:
    """A RAG prompt that fits: the messages, the chunks in them, and whether context was left out."""

    messages: list[Message]
    used: list[Passage]
    """The chunks in the prompt, best first; the last one's text is cut when `cut` is set."""
    trimmed: bool
    """Some retrieved text was left out: a chunk cut or dropped."""
    cut: bool
    """The last used chunk is a sentence-boundary cut of the retrieved one."""
    prompt_tokens: int
    """Tokens of the rendered prompt (what `Counter` says of `messages`)."""
    answer_room: int
    """Tokens the context leaves for the answer (`context_length - prompt_tokens`, at least 1)."""

    @property
    def sources(self) -> list[str]:
        """The sources of the chunks in the prompt, once each, best first."""
        return list(dict.fromkeys(passage.source for passage in self.used))


def rag_messages(
    *, system_prompt: str, conversation: Sequence[Mapping[str, str]], template: str, chunks: Sequence[Chunk]
) -> list[Message]:
    """The system prompt (when not empty), the conversation (its `system` messages left out) and, on
    its last user message (the question), the template filled with the question and `chunks`."""
    turns = [dict(m) for m in conversation if m["role"] != "system"]
    users = [i for i, m in enumerate(turns) if m["role"] == "user"]
    if not users:
        raise ValueError("the conversation has no user message (the question)")
    turns[users[-1]]["content"] = rag_prompt(template, turns[users[-1]]["content"], chunks)
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + turns


def budget_rag_prompt(
    count: Counter,
    *,
    context_length: int,
    max_tokens: int,
    system_prompt: str,
    conversation: Sequence[Mapping[str, str]],
    template: str,
    chunks: Sequence[Chunk],
    min_answer_tokens: int = 1,
    context_share: float = 0.5,
) -> Budgeted:
    """The prompt for the conversation's last user message with as many of `chunks` (best first) as
    leave `max_tokens` for the answer in `context_length`, or `context_share` of the room the
    question leaves when `max_tokens` would take more. Raises `ContextLengthError` only when the prompt
    without any chunk leaves fewer than `min_answer_tokens` (a longer answer than the room left is
    the caller's to shorten)."""
    if not 0.0 <= context_share <= 1.0:
        raise ValueError("context_share is a fraction, from 0 to 1")

    def build(passages: Sequence[Passage]) -> list[Message]:
        return rag_messages(system_prompt=system_prompt, conversation=conversation, template=template, chunks=passages)

    bare = count(build([]))
    if bare + min_answer_tokens > context_length:
        raise ContextLengthError(bare, context_length, min_answer_tokens)
    passages = [Passage(without_markers(c.text).strip(), c.source) for c in chunks]
    free = context_length - bare
    reserve = max(min_answer_tokens, min(max_tokens, free - int(free * context_share)))
    limit = context_length - reserve
    if not passages:
        return Budgeted(build([]), [], False, False, bare, free)
    room, kept, spent = limit - bare, 0, 0
    while kept < len(passages) and spent + (size := count(_block(kept + 1, passages[kept]))) <= room:
        spent += size
        kept += 1
    used = passages[:kept]
    cut = False
    if kept < len(passages):
        piece = _cut(passages[kept], kept + 1, room - spent, count)
        if piece is not None:
            used, cut = [*used, piece], True
    trimmed = len(used) < len(passages) or cut
    return _verified(
        build, count, used, cut=cut, trimmed=trimmed, limit=limit, bare=bare, context_length=context_length
    )


def _verified(
    build: Callable[[Sequence[Passage]], list[Message]],
    count: Counter,
    used: list[Passage],
    *,
    cut: bool,
    trimmed: bool,
    limit: int,
    bare: int,
    context_length: int,
) -> Budgeted:
    """The prompt of `used`, counted whole; while it is over `limit` (tokens merging across chunk
    borders), the last chunk loses its last sentence, or goes."""
    while used:
        messages = build(used)
        tokens = count(messages)
        if tokens <= limit:
            return Budgeted(messages, used, trimmed, cut, tokens, context_length - tokens)
        sentences = _sentences(used[-1].text)
        if len(sentences) > 1:
            used = [*used[:-1], Passage("".join(sentences[:-1]).rstrip(), used[-1].source)]
            cut = True
        else:
            used, cut = used[:-1], False
        trimmed = True
    return Budgeted(build([]), [], trimmed, False, bare, context_length - bare)


def _cut(passage: Passage, number: int, room: int, count: Counter) -> Passage | None:
    """The longest run of `passage`'s first sentences that fits in `room` tokens; None when not one does."""
    sentences = _sentences(passage.text)
    low, high = 0, len(sentences) - 1  # the whole passage is known not to fit
    while low < high:
        middle = (low + high + 1) // 2
        candidate = Passage("".join(sentences[:middle]).rstrip(), passage.source)
        if count(_block(number, candidate)) <= room:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return None
    return Passage("".join(sentences[:low]).rstrip(), passage.source)


def _sentences(text: str) -> list[str]:
    """`text` in sentences (a line break ends one too), each with the whitespace after it."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start and text[start : match.start()].strip():
            parts.append(text[start : match.end()])
            start = match.end()
    if text[start:].strip():
        parts.append(text[start:])
    elif parts:
        parts[-1] += text[start:]
    return parts


def _block(number: int, passage: Passage) -> str:
    """A chunk as `format_context` writes it, with the blank line that separates it from the one before."""
    separator = "\n\n" if number > 1 else ""
    return f"{separator}[{number}] source: {clean_source(passage.source)}\n{passage.text}"


def tokenizer_counter(tokenizer: Any, render: Callable[[list[Message]], str]) -> Counter:
    """A `Counter` for a Hugging Face tokenizer: a text is counted without special tokens; messages
    are rendered by `render` (the chat template) and counted as the model reads them (special tokens
    added only when there is no chat template to write them)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))

    def count(item: str | Sequence[Mapping[str, str]]) -> int:
        if isinstance(item, str):
            return len(tokenizer(item, add_special_tokens=False)["input_ids"])
        rendered = render([dict(m) for m in item])
        return len(tokenizer(rendered, add_special_tokens=not has_template)["input_ids"])

    return count
