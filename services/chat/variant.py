"""What one chat variant is: backend, model, adapter, prompt template, RAG and generation settings.

The same models describe a variant in the Playground and the `variants` entries of a prompt
suite. The prompt itself follows the apps' RAG contract (`appkit.prompt`, shared with the deployed
chatbot): retrieved text is fenced between explicit markers, and the markers are removed from
retrieved text and sources until none is left, so a document cannot close or re-form the fence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from appkit.prompt import DEFAULT_TEMPLATE, FENCE_CLOSE, FENCE_OPEN, fill, placeholders, rag_prompt
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from services.rag.types import Hit

__all__ = [
    "DEFAULT_TEMPLATE",
    "FENCE_CLOSE",
    "FENCE_OPEN",
    "GenerationParams",
    "RagOptions",
    "Variant",
    "fill",
    "placeholders",
    "render_prompt",
    "variant_problems",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RagOptions(_Model):
    collection: str = Field(min_length=1)
    k: int = Field(default=4, ge=1, le=100)
    where: dict[str, Any] | None = None


class GenerationParams(_Model):
    max_new_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0


class Variant(_Model):
    """One way of answering a question; a suite runs every case against each of these."""

    name: str = Field(min_length=1)
    backend: Literal["local", "openai"] = "local"
    model: str | None = None
    revision: str | None = None
    adapter: str | None = None
    load_4bit: bool = False
    endpoint: str | None = None
    api_key_env: str | None = None
    system_prompt: str = ""
    template: str = DEFAULT_TEMPLATE
    rag: RagOptions | None = None
    params: GenerationParams = Field(default_factory=GenerationParams)
    timeout_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Variant:
        for problem in variant_problems(self):
            raise ValueError(problem)
        return self


def variant_problems(variant: Variant) -> list[str]:
    """Why a variant cannot work, as sentences (empty when it can)."""
    problems = []
    names = placeholders(variant.template)
    if "question" not in names:
        problems.append("template must contain {question}")
    if variant.rag is not None and "context" not in names:
        problems.append("template must contain {context} when rag is set")
    if variant.backend == "openai":
        if not variant.endpoint:
            problems.append("backend openai needs endpoint (the server's base URL, e.g. http://host:8000/v1)")
        if variant.adapter or variant.load_4bit:
            problems.append("adapter and load_4bit apply to backend local only")
    elif variant.endpoint or variant.api_key_env:
        problems.append("endpoint and api_key_env apply to backend openai only")
    return problems


def render_prompt(variant: Variant, question: str, hits: Sequence[Hit]) -> str:
    """The user message sent for `question`: the template filled with the question and the context;
    with RAG off, a variant on the default template sends the question alone."""
    if variant.rag is None and variant.template == DEFAULT_TEMPLATE:
        return question
    return rag_prompt(variant.template, question, hits)
