"""Typed settings schema: every section and key with its docstring, and the keys a project file may
set only once trusted (`SECRET_ROUTING`).

Precedence and loading live in `workbench.config.loading`; writing back in `workbench.config.writing`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from workbench import locations
from workbench.config.section import Section
from workbench.config.targets import TargetsSettings

ENV_PREFIX = "WORKBENCH_"
ENV_NESTED_DELIMITER = "__"
PROJECT_FILE = Path("workbench.toml")


class HubSettings(Section):
    endpoint: str | None = None
    """Hub URL (a mirror or a local server). Unset: `HF_ENDPOINT`, else https://huggingface.co."""

    cache_dir: Path | None = None
    """Hugging Face hub cache. Unset: `HF_HUB_CACHE`, else `$HF_HOME/hub` (shared with the `hf` CLI)."""

    timeout: float = Field(default=5.0, gt=0)
    """Seconds to wait for the hub before showing it as offline."""

    token: SecretStr | None = None
    """Hub token. Unset: `HF_TOKEN`, else the huggingface_hub token file. Never printed."""


class WorkspaceSettings(Section):
    data_dir: Path = Field(default_factory=locations.data_dir)
    """Workspace folder: the SQLite store, job folders and demo files."""


class ModelsSettings(Section):
    fit_seq_len: int = Field(default=2048, gt=0)
    """Sequence length the fit estimate assumes for training and the KV cache."""

    fit_batch_size: int = Field(default=1, gt=0)
    """Micro-batch size the fit estimate assumes."""

    search_page_size: int = Field(default=50, gt=0, le=1000)
    """Models fetched per page of hub search results."""


class ServerSettings(Section):
    state_dir: Path = Path("/var/lib/llm-workbench")
    """The machine's shared GPU queue (made by `sudo workbench server init`). Without it, or without
    access to it, jobs queue in your workspace only."""


class UiSettings(Section):
    theme: str = "textual-dark"
    """Textual theme name."""

    keys: dict[str, str] = Field(default_factory=dict)
    """Key remapping: binding id to keys, e.g. `"mode.models" = "f1,1"` (see `?` in the app)."""


class AzureSettings(Section):
    subscription_id: str | None = None
    """Subscription the environments live in. Unset: `AZURE_SUBSCRIPTION_ID`. Credentials never go here."""

    resource_group: str = "rg-llm-workbench-{env}"
    """Resource group of an environment; `{env}` becomes dev or prod."""

    location: str = "westeurope"
    """Azure region for the resource group and every resource in it."""

    infra_dir: Path = Path("infra")
    """Folder with `main.json`, `params/` and `cloud-init/` (relative to where the workbench runs)."""

    params_dir: Path | None = None
    """Folder of the environments' parameter files (`dev.json`, `prod.json`). Unset: `<infra_dir>/params`."""

    ssh_public_key: Path | None = None
    """Public key put on the VMs for the admin user. Unset: `~/.ssh/id_ed25519.pub`, `id_ecdsa.pub` or `id_rsa.pub`."""

    arm_endpoint: str | None = None
    """Azure Resource Manager URL. Unset: the public cloud (https://management.azure.com); tests use a local server."""

    ca_bundle: Path | None = None
    """CA file to trust for `arm_endpoint` (a test server's CA). Unset: the system's trust store."""

    poll_seconds: float = Field(default=10.0, gt=0)
    """Seconds between progress checks of a running deployment when ARM does not say (Retry-After)."""


class RegistrySettings(Section):
    login_server: str | None = None
    """Registry images are pushed to, e.g. `myacr.azurecr.io` (written by `workbench infra up --env dev`)."""

    auth: Literal["docker-config", "password", "acr"] = "docker-config"
    """How to log in: `docker-config` (Docker's config and credential helpers, as after `docker login`),
    `password` (`registry.username` + the variable `registry.password_env`), `acr` (Azure identity)."""

    username: str | None = None
    """Registry user for `auth = "password"`."""

    password_env: str = "WORKBENCH_REGISTRY_PASSWORD"
    """Name of the environment variable holding the password for `auth = "password"` (never printed or in argv)."""

    plain_http: bool = False
    """Speak plain HTTP to the registry's API (a test registry; the engine needs it as an insecure registry too)."""


class ImagesSettings(Section):
    apps_dir: Path = Path("apps")
    """Folder whose app subfolders (a Dockerfile, or `[tool.appkit.image]` in pyproject.toml) are the team's apps
    (relative to where the workbench runs)."""

    app_dirs: tuple[Path, ...] = ()
    """More app folders, each with a Dockerfile or `[tool.appkit.image]` (its folder name is the app's name)."""

    base_image: str | None = None
    """Base image every build gets as `BASE_IMAGE`. Unset: the Dockerfile's own default (a slim Python image)."""

    base_images: dict[str, str] = Field(default_factory=dict)
    """Base image per app name, over `images.base_image`, e.g. `chatbot = "nvidia/cuda:12.8.1-runtime-ubuntu24.04"`."""

    docker_host: str | None = None
    """Docker engine that builds and pushes, e.g. `unix:///var/run/docker.sock`. Unset: `DOCKER_HOST`, else local."""


class ArtifactsSettings(Section):
    blob_endpoint: str | None = None
    """Azure Blob endpoint of artifact storage, e.g. `https://acct.blob.core.windows.net/`. Unset: a local folder."""

    models_container: str = "models"
    """Blob container for model parameters (adapters, merged models)."""

    datasets_container: str = "datasets"
    """Blob container for datasets and RAG collections."""

    connection_string: SecretStr | None = None
    """Storage connection string, for the Azure Storage emulator or development only (production signs in
    with Azure identity). Set it through `WORKBENCH_ARTIFACTS__CONNECTION_STRING`; never printed."""

    remote_dir: Path | None = None
    """A folder (e.g. a shared mount) used as remote storage instead of Azure Blob Storage."""

    workers: int = Field(default=16, gt=0, le=64)
    """Files moved in parallel by a push or pull."""


class RagSettings(Section):
    path: Path | None = None
    """Folder of the embedded Chroma store. Unset: `<workspace.data_dir>/chroma`."""

    server_url: str | None = None
    """Chroma server URL, e.g. `http://chroma.internal:8000`. Set: use it instead of the embedded store."""

    server_token_env: str = "WORKBENCH_CHROMA_TOKEN"
    """Name of the environment variable holding the Chroma server's token (sent as a bearer token; never printed)."""

    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    """Sentence-transformers model new collections embed with (HF cache repo id or folder); recorded per collection."""

    chunk_size: int = Field(default=256, gt=0)
    """Chunk length in tokens of the embedding model's tokenizer (at most the model's input length)."""

    overlap: int = Field(default=32, ge=0)
    """Tokens shared by consecutive chunks of a file (smaller than `rag.chunk_size`)."""

    top_k: int = Field(default=4, gt=0)
    """Chunks a query retrieves unless told otherwise."""


class ChatEndpointSettings(Section):
    url: str = Field(min_length=1)
    """OpenAI-compatible base URL, e.g. `https://chat.internal/v1`."""

    api_key_env: str | None = None
    """Name of the environment variable whose key may be sent to `url` (never printed)."""


class ChatSettings(Section):
    endpoints: dict[str, ChatEndpointSettings] = Field(default_factory=dict)
    """Endpoints trusted with a key, by name, e.g. `[chat.endpoints.team] url = "...", api_key_env = "TEAM_KEY"`.
    Suites and the Playground name them (`endpoint: team`); a key goes to no other endpoint. Honoured from
    your user file and the environment only (a project file needs `workbench trust`)."""


class Settings(BaseModel):
    """Effective workbench settings: the layers merged by `workbench.config.loading` (the environment's
    `WORKBENCH_*` variables read with pydantic-settings there)."""

    model_config = ConfigDict(extra="ignore")

    hub: HubSettings = Field(default_factory=HubSettings)
    """Hugging Face hub connection and cache."""

    workspace: WorkspaceSettings = Field(default_factory=WorkspaceSettings)
    """Where the workbench keeps its state."""

    models: ModelsSettings = Field(default_factory=ModelsSettings)
    """Models mode: fit estimate assumptions and search paging."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    """The GPU server the team shares: where its queue lives."""

    ui: UiSettings = Field(default_factory=UiSettings)
    """Look and keys of the terminal app."""

    azure: AzureSettings = Field(default_factory=AzureSettings)
    """Where `workbench infra` deploys, and the templates it deploys."""

    targets: TargetsSettings = Field(default_factory=TargetsSettings)
    """Deployment servers per environment."""

    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    """Container registry for the apps' images."""

    images: ImagesSettings = Field(default_factory=ImagesSettings)
    """Images mode: where the apps are, their base images and the Docker engine that builds them."""

    artifacts: ArtifactsSettings = Field(default_factory=ArtifactsSettings)
    """Where adapters, datasets and collections are stored."""

    rag: RagSettings = Field(default_factory=RagSettings)
    """RAG collections: the Chroma store, the embedding model and chunking."""

    chat: ChatSettings = Field(default_factory=ChatSettings)
    """OpenAI-compatible endpoints trusted with an API key."""


SECRET_ROUTING: tuple[str, ...] = (
    "hub.endpoint",
    "hub.token",
    "hub.cache_dir",
    "workspace.data_dir",
    "azure.subscription_id",
    "azure.resource_group",
    "azure.arm_endpoint",
    "azure.ca_bundle",
    "azure.ssh_public_key",
    "azure.infra_dir",
    "azure.params_dir",
    "targets",
    "registry",
    "images.docker_host",
    "images.apps_dir",
    "images.app_dirs",
    "artifacts.blob_endpoint",
    "artifacts.connection_string",
    "artifacts.remote_dir",
    "artifacts.models_container",
    "artifacts.datasets_container",
    "rag.server_url",
    "rag.server_token_env",
    "rag.path",
    "chat",
)
"""Keys (a section: all of it) that send a secret somewhere, choose what is trusted (hosts, host keys,
CA files, SSH keys) or where state and code are read from; a project file sets them only once trusted."""
