"""Assertions of a prompt suite: what each kind checks, how it reads in a report, and its verdict.

A check returns None when the answer passes, else the text of the failure (assertion and reason),
which goes into the matrix, the JUnit report and the stored run.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import regex  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from services.chat.session import Answer

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
REGEX_TIMEOUT_S = 1.0
"""How long one `regex` assertion may search an answer; a suite's pattern is not trusted to end."""

Embed = Callable[[Sequence[str]], list[list[float]]]
"""Texts to embedding vectors (the `similar` assertion's model)."""


class _Assertion(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def describe(self) -> str:
        value = getattr(self, "value", None)
        kind = getattr(self, "type", "")
        return f"{kind} {json.dumps(value, ensure_ascii=False)}" if value is not None else str(kind)

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        """None when the answer passes, else why not."""
        raise NotImplementedError


class Equals(_Assertion):
    type: Literal["equals"]
    value: str

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        return None if answer.text.strip() == self.value.strip() else f"answer was {_quote(answer.text)}"


class Contains(_Assertion):
    type: Literal["contains"]
    value: str = Field(min_length=1)

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        return None if self.value in answer.text else f"not in answer {_quote(answer.text)}"


class IContains(_Assertion):
    type: Literal["icontains"]
    value: str = Field(min_length=1)

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        return None if self.value.lower() in answer.text.lower() else f"not in answer {_quote(answer.text)}"


class NotContains(_Assertion):
    type: Literal["not-contains"]
    value: str = Field(min_length=1)

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        return f"found in answer {_quote(answer.text)}" if self.value in answer.text else None


class Regex(_Assertion):
    type: Literal["regex"]
    value: str

    @field_validator("value")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            regex.compile(value)
        except regex.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        try:
            found = regex.search(self.value, answer.text, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            return f"stopped after {REGEX_TIMEOUT_S:g} s (the pattern backtracks too much; simplify it)"
        return None if found else f"no match in answer {_quote(answer.text)}"


class Json(_Assertion):
    type: Literal["json"]
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            from jsonschema import SchemaError, validators  # type: ignore[import-untyped]

            try:
                validators.validator_for(schema).check_schema(schema)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return schema

    def describe(self) -> str:
        return "json (matching its schema)" if self.json_schema else "json"

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        return _json_reason(answer.text, self.json_schema)


class Similar(_Assertion):
    type: Literal["similar"]
    value: str | None = None
    """Text to compare with; unset: the case's reference."""
    threshold: float = Field(default=0.8, ge=-1.0, le=1.0)

    def describe(self) -> str:
        return f"similar >= {self.threshold:g}"

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        score = cosine(*embed([answer.text, self.value or reference or ""]))
        return None if score >= self.threshold else f"cosine {score:.3f} to the reference"


class LatencyMs(_Assertion):
    type: Literal["latency-ms"]
    value: float = Field(gt=0)

    def describe(self) -> str:
        return f"latency-ms <= {self.value:g}"

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        took = answer.latency_s * 1000
        return None if took <= self.value else f"took {took:.0f} ms"


class Label(_Assertion):
    type: Literal["label"]
    value: str = Field(min_length=1)

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        got = normalise_label(answer.text)
        return None if got == normalise_label(self.value) else f"label was {_quote(got)}"


class Retrieved(_Assertion):
    type: Literal["retrieved"]
    value: str = Field(min_length=1)
    """A substring of an expected source path among the retrieved chunks."""

    def reason(self, answer: Answer, reference: str | None, embed: Embed) -> str | None:
        return _retrieved_reason(answer, self.value)


Assertion = Annotated[
    Equals | Contains | IContains | NotContains | Regex | Json | Similar | LatencyMs | Label | Retrieved,
    Field(discriminator="type"),
]
KINDS = (
    "equals",
    "contains",
    "icontains",
    "not-contains",
    "regex",
    "json",
    "similar",
    "latency-ms",
    "label",
    "retrieved",
)


def check(assertion: Assertion, answer: Answer, *, reference: str | None, embed: Embed) -> str | None:
    """None when `answer` passes `assertion`, else `"<assertion>: <why not>"`."""
    reason = assertion.reason(answer, reference, embed)
    return None if reason is None else f"{assertion.describe()}: {reason}"


def _quote(text: str, limit: int = 80) -> str:
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return json.dumps(short, ensure_ascii=False)


def strip_fences(text: str) -> str:
    """The answer without a surrounding ```json ... ``` block, which models like to add."""
    found = re.fullmatch(r"\s*```[A-Za-z]*\s*\n(.*?)\n?```\s*", text, flags=re.DOTALL)
    return found.group(1) if found else text.strip()


def _json_reason(text: str, schema: dict[str, Any] | None) -> str | None:
    try:
        data = json.loads(strip_fences(text))
    except ValueError as exc:
        return f"not valid JSON ({exc.args[0] if exc.args else exc}): {_quote(text)}"
    if schema is None:
        return None
    from jsonschema import ValidationError, validate  # type: ignore[import-untyped]

    try:
        validate(data, schema)
    except ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"schema violation at {where}: {exc.message}"
    return None


def normalise_label(text: str) -> str:
    """Lower case, outer whitespace and punctuation removed, inner whitespace collapsed."""
    return " ".join(text.strip().strip(string.punctuation + " \n\t").lower().split())


def _retrieved_reason(answer: Answer, expected: str) -> str | None:
    sources = [hit.source for hit in answer.hits]
    if not sources:
        return "nothing was retrieved (is RAG on for this variant?)"
    if any(expected in source for source in sources):
        return None
    return "not among the sources: " + ", ".join(sorted({Path(s).name for s in sources}))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5)
    return dot / norm if norm else 0.0


class Embedder:
    """The RAG embedding model (MiniLM by default) from the HF cache, loaded on first use and shared."""

    def __init__(self, *, cache_dir: Path, model_id: str = EMBEDDING_MODEL) -> None:
        self.cache_dir, self.model_id = cache_dir, model_id

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        from services.rag.embeddings import load_embedder

        return load_embedder(self.model_id, cache_dir=self.cache_dir).encode(texts)
