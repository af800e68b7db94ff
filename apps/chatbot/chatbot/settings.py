"""The chatbot's settings: `CHATBOT_*` environment variables, read once at startup."""

from __future__ import annotations

import tempfile
from pathlib import Path

from appkit.prompt import DEFAULT_TEMPLATE
from appkit.settings import ServiceSettings
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    """Everything the chatbot can be told; each field is `CHATBOT_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CHATBOT_")

    model_path: Path
    """Folder of the base model (or of a merged model), mounted read-only."""
    adapter_path: Path | None = None
    """Folder of a PEFT adapter for the base model; unset for a merged model."""
    merge_adapter: bool = True
    """Fold the adapter into the base weights after loading (faster generation; ignored in 4-bit)."""
    load_4bit: bool = False
    """Load the base in 4-bit (bitsandbytes NF4) when a CUDA GPU is visible; full precision otherwise."""
    served_model_name: str = Field(default="chatbot", min_length=1)
    """The model id clients send and `/v1/models` lists."""

    collection_path: Path | None = None
    """Folder of a Chroma store (PersistentClient) mounted read-only; unset turns retrieval off."""
    collection_name: str | None = None
    """Collection in that store; may stay unset when the store holds exactly one."""
    embedding_model_path: Path | None = None
    """Folder of the collection's embedding model; needed only when it is not all-MiniLM-L6-v2 (packaged)."""
    rag_top_k: int = Field(default=4, ge=1, le=50)
    """Chunks retrieved per question."""
    work_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()))
    """Writable scratch folder: the read-only collection is copied here at startup (Chroma writes to its store)."""

    system_prompt: str = "You are a helpful assistant for the team's internal documentation."
    """The operator's system message, sent before any system message of the client."""
    prompt_template: str = DEFAULT_TEMPLATE
    """How the last user message is sent when retrieval is on: `{context}` and `{question}` are filled in
    (the workbench Playground's default, so a deployed chatbot sees the prompts it was tried on)."""

    default_max_tokens: int = Field(default=256, ge=1)
    """Tokens generated when a request does not say (`max_tokens`)."""
    max_tokens_limit: int = Field(default=1024, ge=1)
    """Upper bound on `max_tokens` a request may ask for."""
    default_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Temperature when a request does not say; 0 is greedy decoding."""
    generation_timeout_s: float = Field(default=60.0, gt=0)
    """Wall-clock budget of one request (queueing, retrieval and generation); 504 past it."""
    batch_window_ms: float = Field(default=10.0, ge=0, le=1000)
    """How long a request waits for others to share its batch (one batched `generate`) before it starts."""
    max_batch: int = Field(default=16, ge=1, le=256)
    """Most requests generated together in one batch."""

    log_prompts: bool = False
    """Include the full prompt (with the retrieved context) in logs; off by default: it may hold personal data."""

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("CHATBOT_DEFAULT_MAX_TOKENS is above CHATBOT_MAX_TOKENS_LIMIT")
        if self.collection_path is not None and "{context}" not in self.prompt_template:
            raise ValueError("CHATBOT_PROMPT_TEMPLATE must contain {context} when retrieval is on")
        if "{question}" not in self.prompt_template:
            raise ValueError("CHATBOT_PROMPT_TEMPLATE must contain {question}")
        return self
