"""The classifier's settings: `CLASSIFIER_*` environment variables, read once at startup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from appkit.settings import ServiceSettings
from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict


class Settings(ServiceSettings):
    """Everything the classifier can be told; each field is `CLASSIFIER_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_")

    model_path: Path
    """Folder of the base model (or of a merged model), mounted read-only."""
    adapter_path: Path | None = None
    """Folder of a PEFT sequence-classification adapter for the base; unset for a merged model."""
    merge_adapter: bool = True
    """Fold the adapter into the base weights after loading (faster inference)."""
    labels: Annotated[list[str] | None, NoDecode] = None
    """Label names in class order, comma-separated; by default the adapter's manifest, else the model's id2label."""
    served_model_name: str = Field(default="classifier", min_length=1)
    """The model id answers carry (and requests may name)."""

    max_texts: int = Field(default=64, ge=1)
    """Most texts one request may hold."""
    max_text_chars: int = Field(default=20_000, ge=1)
    """Longest text accepted, in characters (the model reads at most `max_length` tokens of it)."""
    max_length: int = Field(default=512, ge=8)
    """Tokens per text the model reads; longer texts are truncated."""
    batch_size: int = Field(default=16, ge=1)
    """Texts per forward pass; the texts of concurrent requests share passes up to this many."""
    batch_window_ms: float = Field(default=5.0, ge=0, le=1000)
    """How long a request waits for others to share its forward pass before it starts."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Wall-clock budget of one request (queueing and inference); 504 past it."""

    log_texts: bool = False
    """Include the classified texts in logs; off by default, because they may hold personal data."""

    @field_validator("labels", mode="before")
    @classmethod
    def _split_labels(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()] or None
        return value
