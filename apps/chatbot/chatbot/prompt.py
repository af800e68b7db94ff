"""The messages the model sees: the operator's system prompt, the conversation, and on the last user
message the retrieved context, written by the RAG prompt contract of `appkit.prompt` (the one the
workbench Playground uses, so a deployed chatbot answers the prompts it was tried on).
"""

from __future__ import annotations

from collections.abc import Sequence

from appkit.prompt import rag_prompt

from chatbot.retrieval import Hit

Messages = list[dict[str, str]]


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
        turns[last]["content"] = rag_prompt(template, turns[last]["content"], hits)
    return ([{"role": "system", "content": system}] if system else []) + turns
