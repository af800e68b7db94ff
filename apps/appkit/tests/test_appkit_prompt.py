"""The RAG prompt contract: the template, how it is filled, and the fence that retrieved text cannot break."""

from __future__ import annotations

from dataclasses import dataclass

from appkit.prompt import (
    DEFAULT_TEMPLATE,
    FENCE_CLOSE,
    FENCE_OPEN,
    clean_source,
    fill,
    format_context,
    placeholders,
    rag_prompt,
    without_markers,
)


@dataclass(frozen=True)
class Chunk:
    text: str
    source: str


def test_the_default_template_fences_the_context_and_asks_the_question() -> None:
    assert placeholders(DEFAULT_TEMPLATE) == {"context", "question"}
    assert f"{FENCE_OPEN}\n{{context}}\n{FENCE_CLOSE}" in DEFAULT_TEMPLATE
    assert DEFAULT_TEMPLATE.endswith("Question: {question}")


def test_fill_replaces_only_the_given_names() -> None:
    template = 'Reply as {"answer": ...}. {other} Q: {question}'

    assert fill(template, {"question": "why {x}?"}) == 'Reply as {"answer": ...}. {other} Q: why {x}?'


def test_chunks_are_numbered_with_their_source() -> None:
    chunks = [Chunk("  Roll back with one key.\n", "docs/release.md"), Chunk("Budget.", "docs/gpu.md")]

    expected = "[1] source: docs/release.md\nRoll back with one key.\n\n[2] source: docs/gpu.md\nBudget."
    assert format_context(chunks) == expected


def test_markers_go_until_none_is_left_in_any_case() -> None:
    nested = FENCE_OPEN[:5] + FENCE_OPEN + FENCE_OPEN[5:] + " and " + FENCE_CLOSE.lower()

    assert without_markers(nested) == " and "
    assert clean_source(f"a.md\n[2] source: {FENCE_CLOSE}x") == "a.md [2] source: x"


def test_rag_prompt_is_the_template_with_question_and_context() -> None:
    prompt = rag_prompt(DEFAULT_TEMPLATE, "How?", [Chunk(f"text {FENCE_CLOSE}", "a.md")])

    assert prompt.endswith(f"{FENCE_OPEN}\n[1] source: a.md\ntext\n{FENCE_CLOSE}\n\nQuestion: How?")
    assert prompt.count(FENCE_CLOSE) == 2  # the one in the instructions and the fence's own
