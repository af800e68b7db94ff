"""Request and answer shapes of `POST /v1/classify`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClassifyRequest(BaseModel):
    """Texts to classify; `model`, when given, must name the served model."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1)
    model: str | None = None


class Classification(BaseModel):
    """The best label of one text, its probability, and the probability of every label."""

    label: str
    score: float
    scores: dict[str, float]


class Usage(BaseModel):
    input_tokens: int


class ClassifyResponse(BaseModel):
    model: str
    results: list[Classification]
    usage: Usage
