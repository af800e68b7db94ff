"""The chatbot's settings: `CHATBOT_*` environment variables, read once at startup."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from appkit.prompt import DEFAULT_TEMPLATE
from appkit.settings import ServiceSettings
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    """Everything the chatbot can be told; each field is `CHATBOT_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CHATBOT_")

    engine: Literal["transformers", "vllm", "openai"] = "transformers"
    """What generates: `transformers` in this process, `openai` any OpenAI-compatible server at
    `upstream_url`, `vllm` a vLLM OpenAI server (sidecar) serving the adapter as a LoRA module."""
    model_path: Path | None = None
    """Folder of the base model (or of a merged model), mounted read-only; required for `transformers`,
    and with `openai`/`vllm` its tokenizer (unless `tokenizer_path`) budgets the RAG context."""
    adapter_path: Path | None = None
    """Folder of a PEFT adapter for the base model; unset for a merged model."""
    merge_adapter: bool = True
    """Fold the adapter into the base weights after loading (faster generation; ignored in 4-bit)."""
    load_4bit: bool = False
    """Load the base in 4-bit (bitsandbytes NF4) on a CUDA GPU; without one the load fails (`/readyz` 503)."""
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
    batch_window_ms: float = Field(default=25.0, ge=0, le=1000)
    """While other requests are on their way (arrived, still retrieving or preparing), how long a batch
    (of question embeddings, or one batched `generate`) waits for the next of them before it starts;
    a request on an idle service, with nobody else on the way, starts at once."""
    max_batch: int = Field(default=16, ge=1, le=256)
    """Most requests generated together in one batch."""

    upstream_url: str | None = None
    """`openai`/`vllm`: base URL of the upstream OpenAI API, as an OpenAI client takes it
    (`http://vllm:8000/v1`); requests go to `<url>/chat/completions`."""
    upstream_model: str | None = None
    """`openai`/`vllm`: the `model` sent upstream; for `vllm` it defaults to the adapter's LoRA name
    (the adapter folder's name), else it is required."""
    upstream_api_key_file: Path | None = None
    """File holding the upstream's API key (a mounted secret); never logged."""
    upstream_api_key_env: str | None = None
    """Name of an environment variable holding the upstream's API key (when there is no key file)."""
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)
    """How long to wait for a connection to the upstream (the whole request is bounded by `generation_timeout_s`)."""
    upstream_max_bytes: int = Field(default=8_388_608, ge=1024)
    """Largest upstream answer (the whole stream) read; a larger one is an error (502)."""
    upstream_use_proxy: bool = False
    """Honour HTTP(S)_PROXY/NO_PROXY for the upstream (off: the upstream is on the internal network)."""
    tokenizer_path: Path | None = None
    """`openai`/`vllm`: folder of the upstream model's tokenizer for the context budget (else `model_path`);
    with neither, retrieved context is sent without a budget."""
    context_length: int | None = Field(default=None, ge=16)
    """`openai`/`vllm`: the upstream model's context length for the budget (vLLM's `--max-model-len`);
    default: `max_position_embeddings` of the tokenizer folder's `config.json`."""

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
        if self.engine == "transformers" and self.model_path is None:
            raise ValueError("CHATBOT_MODEL_PATH is required with CHATBOT_ENGINE=transformers")
        if self.engine != "transformers" and not self.upstream_url:
            raise ValueError(f"CHATBOT_UPSTREAM_URL is required with CHATBOT_ENGINE={self.engine}")
        if self.engine != "transformers" and self.upstream_name() is None:
            raise ValueError(f"CHATBOT_UPSTREAM_MODEL is required with CHATBOT_ENGINE={self.engine}")
        if self.upstream_url and not self.upstream_url.startswith(("http://", "https://")):
            raise ValueError("CHATBOT_UPSTREAM_URL must start with http:// or https://")
        return self

    def upstream_name(self) -> str | None:
        """The `model` sent upstream: the setting, else (for `vllm`) the adapter's LoRA name."""
        if self.upstream_model:
            return self.upstream_model
        if self.engine == "vllm" and self.adapter_path is not None:
            return self.adapter_path.name
        return None
