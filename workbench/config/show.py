"""Showing settings: every effective value with where it came from (secrets only as set/unset)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from workbench.config.loading import Layer, source_of
from workbench.config.schema import Settings


def token_source(settings: Settings, layers: list[Layer]) -> str:
    """Where the effective hub token comes from, without revealing it."""
    if settings.hub.token:
        return f"set ({source_of(('hub', 'token'), layers)})"
    if os.environ.get("HF_TOKEN"):
        return "set (HF_TOKEN)"
    from huggingface_hub import constants

    return "set (token file)" if Path(constants.HF_TOKEN_PATH).is_file() else "unset"


def effective_rows(settings: Settings, layers: list[Layer]) -> list[tuple[str, Any, str]]:
    """(dotted key, JSON-safe value, source) for every setting; secrets only as set/unset."""
    rows: list[tuple[str, Any, str]] = []
    for section_name in Settings.model_fields:
        section = getattr(settings, section_name)
        for key in type(section).model_fields:
            value = getattr(section, key)
            loc = (section_name, key)
            shown = ("set" if value else "unset") if isinstance(value, SecretStr) or key == "token" else value
            rows.append((".".join(loc), _json_safe(shown), source_of(loc, layers)))
    rows.append(("hub.token (effective)", token_source(settings, layers), "huggingface_hub"))
    return rows + ignored_rows(layers)


def ignored_rows(layers: list[Layer]) -> list[tuple[str, Any, str]]:
    """(`key (ignored)`, value, why) for each secret-routing key an untrusted project file set."""
    rows = []
    for layer in layers:
        why = f"ignored: {layer.name} is not trusted, run `workbench trust`"
        for key, value in layer.ignored.items():
            secret = "token" in key or key.endswith("connection_string")
            rows.append((f"{key} (ignored)", "set" if secret else _json_safe(value), why))
    return rows


def _json_safe(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return str(value) if isinstance(value, Path) else value
