"""The settings every app has (keys, limits, logs, version); an app subclasses `ServiceSettings`
with its own `env_prefix` and fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IMAGE_VERSION = "APP_VERSION"
"""The environment variable the kit's Dockerfile sets to the image's version."""


class ServiceSettings(BaseSettings):
    """What every app can be told; each field is `<PREFIX><NAME>` in the environment."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", use_attribute_docstrings=True)

    served_model_name: str = Field(default="model", min_length=1)
    """The model id answers carry (and requests may name)."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted; 413 above it."""

    api_keys: SecretStr | None = None
    """Accepted API keys, comma-separated (prefer `api_keys_file`)."""
    api_keys_file: Path | None = None
    """File of accepted API keys, one per line (`#` comments allowed), e.g. a mounted secret; re-read on change."""
    metrics_public: bool = False
    """Serve `/metrics` without a key (for a scraper on a private network); it needs a key by default."""

    log_level: str = "INFO"
    """Root log level (DEBUG, INFO, WARNING, ERROR)."""
    version: str = Field(default_factory=lambda: os.environ.get(IMAGE_VERSION, "dev"))
    """The version `/healthz` reports; by default the image's (`APP_VERSION`, which the kit's Dockerfile
    sets from its VERSION build argument), else `dev`."""

    @model_validator(mode="after")
    def _require_api_keys(self) -> Self:
        if not self.api_keys and self.api_keys_file is None:
            prefix = self.model_config.get("env_prefix", "")
            raise ValueError(f"no API keys configured: set {prefix}API_KEYS_FILE (or {prefix}API_KEYS)")
        return self
