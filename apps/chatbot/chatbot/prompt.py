"""The messages the model sees: the operator's system prompt, the conversation, and on the last user
message the retrieved context, written by the RAG prompt contract of `appkit.prompt` and fitted to
the model's context by `appkit.budget` (the ones the workbench Playground uses, so a deployed chatbot
answers the prompts it was tried on).
"""

from __future__ import annotations

from collections.abc import Sequence

from appkit.budget import Budgeted, Counter, budget_rag_prompt, rag_messages

from chatbot.retrieval import Hit

Messages = list[dict[str, str]]


def last_user_text(messages: Messages) -> str | None:
    """The content of the last user message (the question retrieval searches for)."""
    for message in reversed(messages):
        if message["role"] == "user":
            return message["content"]
    return None


def system_text(conversation: Messages, system_prompt: str) -> str:
    """One system message: the operator's first, then the client's."""
    client_system = [m["content"] for m in conversation if m["role"] == "system"]
    return "\n\n".join(part for part in [system_prompt, *client_system] if part)


def build_messages(
    conversation: Messages, *, system_prompt: str, template: str, hits: Sequence[Hit] | None
) -> Messages:
    """One system message (operator's first, then the client's), the rest of the conversation, and
    the last user message filled into `template` when retrieval ran (`hits` is not None); no budget."""
    system = system_text(conversation, system_prompt)
    if hits is None:
        turns = [dict(m) for m in conversation if m["role"] != "system"]
        return ([{"role": "system", "content": system}] if system else []) + turns
    return rag_messages(system_prompt=system, conversation=conversation, template=template, chunks=hits)


def budget_messages(
    conversation: Messages,
    *,
    system_prompt: str,
    template: str,
    hits: Sequence[Hit],
    count: Counter,
    context_length: int,
    max_tokens: int,
) -> Budgeted:
    """`build_messages` with as many `hits` (best first) as fit the model's context next to an answer of
    `max_tokens` (see `appkit.budget`); `ContextLengthError` when the question alone leaves no room."""
    return budget_rag_prompt(
        count,
        context_length=context_length,
        max_tokens=max_tokens,
        system_prompt=system_text(conversation, system_prompt),
        conversation=conversation,
        template=template,
        chunks=hits,
    )
