"""The messages the model sees: the operator's system prompt, the conversation, and on the last user
message the retrieved context fenced by the workbench's template.

Retrieved text is data, never instructions: the template says so, and the fence markers are
removed from retrieved text and sources until none is left, so that a document cannot close or
re-form the fence. The layout matches
the workbench Playground, so a deployed chatbot answers the prompts it was tried on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from chatbot.retrieval import Hit
from chatbot.settings import FENCE_CLOSE, FENCE_OPEN

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MARKER = re.compile("|".join(re.escape(marker) for marker in (FENCE_OPEN, FENCE_CLOSE)), re.IGNORECASE)

Messages = list[dict[str, str]]


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` for the given names only; other braces (JSON examples) stay as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def format_context(hits: Sequence[Hit]) -> str:
    """Retrieved chunks, numbered with their one-line source, with fence markers removed from both."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        blocks.append(f"[{number}] source: {clean_source(hit.source)}\n{without_markers(hit.text).strip()}")
    return "\n\n".join(blocks)


def without_markers(text: str) -> str:
    """`text` with every fence marker (in any case) removed until none is left: removing one cannot
    join its neighbours into another."""
    cleaned = _MARKER.sub("", text)
    while cleaned != text:
        text, cleaned = cleaned, _MARKER.sub("", cleaned)
    return cleaned


def clean_source(source: str) -> str:
    """A chunk's source on one line (a source cannot start a block of its own), without fence markers."""
    return without_markers(" ".join(source.split()))


def last_user_text(messages: Messages) -> str | None:
    """The content of the last user message (the question retrieval searches for)."""
    for message in reversed(messages):
        if message["role"] == "user":
            return message["content"]
    return None


def build_messages(
    conversation: Messages, *, system_prompt: str, template: str, hits: Sequence[Hit] | None
) -> Messages:
    """One system message (operator's first, then the client's), the rest of the conversation, and
    the last user message filled into `template` when retrieval ran (`hits` is not None)."""
    client_system = [m["content"] for m in conversation if m["role"] == "system"]
    system = "\n\n".join(part for part in [system_prompt, *client_system] if part)
    turns = [dict(m) for m in conversation if m["role"] != "system"]
    if hits is not None:
        last = max(i for i, m in enumerate(turns) if m["role"] == "user")
        turns[last]["content"] = fill(template, {"question": turns[last]["content"], "context": format_context(hits)})
    return ([{"role": "system", "content": system}] if system else []) + turns
