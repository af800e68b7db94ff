"""What the API asks of a generation engine (`Engine`), and the engine `CHATBOT_ENGINE` names.

Every engine sits behind the same API: keys, retrieval, the RAG prompt contract, the context budget
and the OpenAI API shapes stay in front; only generation changes.

- `transformers`: `engine.LanguageModel`, the model in this process (batched `generate`).
- `openai`: `upstream.UpstreamEngine`, any OpenAI-compatible server at `CHATBOT_UPSTREAM_URL`.
- `vllm`: the same, pointed at a vLLM OpenAI server (a sidecar) that serves the adapter as a LoRA
  module named as `vllm_engine` says.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from appkit.budget import Counter
from pydantic import SecretStr

from chatbot.batching import BatchConfig, Ticket
from chatbot.engine import GenerationParams, LoadError, Prompt, Sink, load_language_model
from chatbot.settings import Settings
from chatbot.streaming import Running
from chatbot.upstream import UpstreamConfig, UpstreamEngine

log = logging.getLogger("chatbot.engines")


class Engine(Protocol):
    """A generation engine as the API uses it."""

    @property
    def adapter(self) -> str | None:
        """The adapter (LoRA) it serves, for `/readyz`."""

    @property
    def max_positions(self) -> int | None:
        """The model's context length when known here (the budget needs it and `counter`)."""

    def counter(self) -> Counter | None:
        """Counts tokens as the model reads them; None when no tokenizer is at hand (no budget)."""

    def prompt(self, messages: list[dict[str, str]]) -> Prompt:
        """`messages` made ready to generate from (blocking: rendering, tokenizing)."""

    def coming(self) -> Ticket:
        """Announce a request that will call `generate` soon, so a batch may wait for it; the ticket goes
        to `generate` (or is released when the request is dropped)."""

    def generate(
        self, prompt: Prompt, params: GenerationParams, *, deadline: float, sink: Sink, ticket: Ticket | None = None
    ) -> Running:
        """Start generating, on the event loop's thread; text pieces, then one `Outcome`, go to `sink`;
        `cancel()` on the result stops it; `ticket` (from `coming`) is released."""


def load_engine(settings: Settings) -> Engine:
    """The engine `settings.engine` names, loaded (blocking)."""
    if settings.engine == "transformers":
        if settings.model_path is None:  # the settings refuse this; for the type checker
            raise LoadError("CHATBOT_MODEL_PATH is required with CHATBOT_ENGINE=transformers")
        return load_language_model(
            settings.model_path,
            settings.adapter_path,
            load_4bit=settings.load_4bit,
            merge_adapter=settings.merge_adapter,
            batching=batch_config(settings),
        )
    return load_upstream(settings)


def batch_config(settings: Settings) -> BatchConfig:
    """How the service batches generation and retrieval: the settings' window and size; a request starts
    at once when no other is on its way (the app announces each one)."""
    return BatchConfig(window_s=settings.batch_window_ms / 1000, max_batch=settings.max_batch, idle_start=True)


def load_upstream(settings: Settings) -> UpstreamEngine:
    """The `openai`/`vllm` engine: the upstream's address and key, and a local tokenizer when one is mounted."""
    url, model = settings.upstream_url, settings.upstream_name()
    if url is None or model is None:  # the settings refuse this; for the type checker
        raise LoadError(f"CHATBOT_UPSTREAM_URL and CHATBOT_UPSTREAM_MODEL are required with {settings.engine}")
    config = UpstreamConfig(
        url=url,
        model=model,
        api_key=upstream_key(settings),
        connect_timeout_s=settings.upstream_connect_timeout_s,
        max_bytes=settings.upstream_max_bytes,
        use_proxy=settings.upstream_use_proxy,
    )
    folder = tokenizer_folder(settings)
    tokenizer = load_tokenizer(folder) if folder is not None else None
    context = settings.context_length or context_length(folder, settings.model_path)
    adapter = model if settings.engine == "vllm" else None
    budget = "on" if tokenizer is not None and context else "off: no tokenizer or context length"
    log.info("upstream engine", extra={"engine": settings.engine, "upstream_model": model, "budget": budget})
    return UpstreamEngine(config, tokenizer=tokenizer, context_length=context, adapter=adapter)


def upstream_key(settings: Settings) -> SecretStr | None:
    """The upstream's API key from `upstream_api_key_file` or the variable `upstream_api_key_env` names;
    errors name the setting, never the key."""
    if settings.upstream_api_key_file is not None:
        try:
            text = settings.upstream_api_key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problem = type(exc).__name__
            raise LoadError(f"CHATBOT_UPSTREAM_API_KEY_FILE cannot be read ({problem}): mount the key there") from None
        keys = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if len(keys) != 1:
            raise LoadError("CHATBOT_UPSTREAM_API_KEY_FILE must hold exactly one key (`#` comments allowed)")
        return SecretStr(keys[0])
    if settings.upstream_api_key_env:
        value = os.environ.get(settings.upstream_api_key_env, "").strip()
        if not value:
            name = settings.upstream_api_key_env
            raise LoadError(f"CHATBOT_UPSTREAM_API_KEY_ENV names {name}, which is unset or empty")
        return SecretStr(value)
    return None


def tokenizer_folder(settings: Settings) -> Path | None:
    """Where the upstream model's tokenizer is mounted: `tokenizer_path`, else the adapter's (when it
    has one) or the base model's folder; None when neither is set."""
    if settings.tokenizer_path is not None:
        return settings.tokenizer_path
    adapter = settings.adapter_path
    if adapter is not None and (adapter / "tokenizer_config.json").is_file():
        return adapter
    return settings.model_path


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    if not (folder / "tokenizer_config.json").is_file():
        raise LoadError(f"{folder} has no tokenizer_config.json: set CHATBOT_TOKENIZER_PATH to the model's tokenizer")
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def context_length(*folders: Path | None) -> int | None:
    """`max_position_embeddings` from `config.json` in the first of `folders` that says."""
    for folder in folders:
        if folder is None:
            continue
        try:
            value = json.loads((folder / "config.json").read_text()).get("max_position_embeddings")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return None
