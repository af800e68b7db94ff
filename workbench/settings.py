"""Typed settings: one object built from defaults, `./workbench.toml`, the user file and the environment.

Precedence, lowest first: built-in defaults, `./workbench.toml` (the team's shared file), the user
file under the XDG config dir, then `WORKBENCH_*` environment variables (sections nest with `__`,
e.g. `WORKBENCH_HUB__ENDPOINT`). Nothing reads configuration at import time: `load_settings()` is
the one factory, shared by the CLI, the TUI and the tests.

A project file comes with a cloned repository, so its keys that route secrets or trust
(`SECRET_ROUTING`) are dropped until the user trusts that exact file (`workbench.trust`); the
dropped keys stay on the project layer as `ignored` so the front-ends can say which and why.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource

from services.errors import ConfigError
from services.hub import HubConnection
from workbench import locations, trust
from workbench.trust import ProjectTrust

if TYPE_CHECKING:
    from services.artifacts.storage import Storage
    from services.artifacts.workspace import Artifacts
    from services.chat.remote import EndpointPolicy
    from services.deploy.target import Target
    from services.infra.arm import AzureTarget

ENV_PREFIX = "WORKBENCH_"
PROJECT_FILE = Path("workbench.toml")


class Section(BaseModel):
    """A settings section: unknown keys are errors, every field documented."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


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


class TargetAppSettings(Section):
    port: int | None = Field(default=None, gt=0, lt=65536)
    """Public port the target's proxy serves this app on. Unset: the target's `app_port`."""

    artifacts: dict[str, str] = Field(default_factory=dict)
    """Artifacts the app mounts read-only at `/artifacts/<mount>`: mount to `NAME:LABEL` or `NAME@VERSION`."""

    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment of the app's container (never secrets), e.g. `CHATBOT_ADAPTER_PATH`."""

    api_keys_env: str | None = None
    """Variable on the deploying machine holding the app's API keys (comma-separated); they reach the
    container as a read-only file, never its environment or argv."""

    api_keys_file_env: str = "API_KEYS_FILE"
    """Variable telling the app where that file is, e.g. `CHATBOT_API_KEYS_FILE`."""

    gpus: int | None = None
    """GPUs the container gets (-1: all). Unset: none."""

    memory: str | None = None
    """Memory limit, e.g. `8g`."""

    cpus: float | None = Field(default=None, gt=0)
    """CPU limit, e.g. `2`."""

    suite: Path | None = None
    """Prompt suite that must pass before a deploy goes on (the gate)."""

    ready_timeout_s: float = Field(default=120.0, gt=0)
    """Seconds the new container gets to answer `/readyz` with 200."""


class TargetSettings(Section):
    host: str
    """Deployment VM's address: public DNS name, else public IP, else private IP."""

    user: str = "azureuser"
    """SSH user on the deployment VM (key login only)."""

    @field_validator("host", "user")
    @classmethod
    def _ssh_name(cls, value: str, info: Any) -> str:
        """A plain host or login name: never something ssh would read as an option."""
        from services.deploy.target import validate_ssh_host, validate_ssh_user

        return validate_ssh_host(value) if info.field_name == "host" else validate_ssh_user(value)

    ssh_port: int = Field(default=22, gt=0, lt=65536)
    """SSH port of the deployment VM."""

    app_port: int = Field(default=443, gt=0, lt=65536)
    """Port the apps' reverse proxy listens on."""

    registry: str | None = None
    """Registry login server this target pulls images from (its environment's registry)."""

    docker_host: str | None = None
    """Docker engine: `ssh://user@host[:port]` or `unix:///path`. Unset: `ssh://<user>@<host>:<ssh_port>`."""

    identity_file: Path | None = None
    """SSH private key for the target. Unset: your ssh-agent and default keys."""

    known_hosts: Path | None = None
    """known_hosts file for the target. Unset: yours and the system's. An unknown host key is always refused."""

    keep: int = Field(default=3, ge=1)
    """Old versions kept (stopped) per app for instant rollback."""

    proxy_image: str = "nginx:1.27-alpine"
    """Reverse proxy image run on the target in front of the apps."""

    apps: dict[str, TargetAppSettings] = Field(default_factory=dict)
    """How each app runs on this target."""


class TargetsSettings(Section):
    dev: TargetSettings | None = None
    """The dev environment's deployment server (written by `workbench infra up --env dev`)."""

    staging: TargetSettings | None = None
    """A staging deployment server (deploys to prod can require staging first: `--target staging --target prod`)."""

    prod: TargetSettings | None = None
    """The prod environment's deployment server (written by `workbench infra up --env prod`). `-dirty` versions
    are refused here."""


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
    """Folder whose subfolders with a Dockerfile are the team's apps (relative to where the workbench runs)."""

    app_dirs: list[Path] = Field(default_factory=list)
    """More app folders, each with a Dockerfile (its folder name is the app's name)."""

    base_image: str | None = None
    """Base image every build gets as `BASE_IMAGE`. Unset: each Dockerfile's own default (a slim Python image)."""

    base_images: dict[str, str] = Field(default_factory=dict)
    """Base image per app name, over `images.base_image`, e.g. `chatbot = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"`."""

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


class Settings(BaseSettings):
    """Effective workbench settings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    hub: HubSettings = Field(default_factory=HubSettings)
    """Hugging Face hub connection and cache."""

    workspace: WorkspaceSettings = Field(default_factory=WorkspaceSettings)
    """Where the workbench keeps its state."""

    models: ModelsSettings = Field(default_factory=ModelsSettings)
    """Models mode: fit estimate assumptions and search paging."""

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Init values are the merged TOML files; the environment overrides them.
        return (env_settings, init_settings)


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


@dataclass(frozen=True)
class Layer:
    """One source of settings values, in precedence order."""

    name: str
    values: dict[str, Any]
    ignored: dict[str, Any] = field(default_factory=dict)
    """Dotted key to value: what an untrusted project file set and the loader dropped."""
    untrusted: ProjectTrust | None = None
    """Set on an untrusted project file that had secret-routing keys."""
    unfiltered: dict[str, Any] | None = None
    """The untrusted file's values before dropping: still checked, so a bad value is reported either way."""


def load_settings(
    *,
    project_file: Path | None = PROJECT_FILE,
    user_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings; raise `ConfigError` naming the file and key on bad input."""
    return _build(_layers(project_file, user_file, environ))[0]


def untrusted_project(layers: list[Layer]) -> ProjectTrust | None:
    """The project file whose secret-routing keys were ignored, if any."""
    return next((layer.untrusted for layer in layers if layer.untrusted is not None), None)


def load_with_layers(
    *,
    project_file: Path | None = PROJECT_FILE,
    user_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, list[Layer]]:
    """Like `load_settings`, also returning the layers so a caller can say where a value came from."""
    return _build(_layers(project_file, user_file, environ))


def _layers(project_file: Path | None, user_file: Path | None, environ: Mapping[str, str] | None) -> list[Layer]:
    user_file = user_file if user_file is not None else locations.user_config_file()
    layers = []
    if project_file is not None and project_file.is_file():
        layers.append(_project_layer(project_file, trust.store_beside(user_file)))
    if user_file.is_file():
        layers.append(Layer(str(user_file), _read_toml(user_file)))
    layers.append(Layer("environment", _env_values(environ)))
    return layers


def _project_layer(path: Path, store: Path) -> Layer:
    """The project file's values; secret-routing ones only when this exact content is trusted."""
    content = _read_bytes(path)
    values = parse_toml(path, content)
    digest = trust.digest_of(content)
    state = trust.state_of(path, digest, store)
    if state == "trusted":
        return Layer(str(path), values)
    unfiltered = copy.deepcopy(values)
    ignored = drop_secret_routing(values)
    found = ProjectTrust(path.absolute(), digest, store, tuple(ignored), state == "declined") if ignored else None
    return Layer(str(path), values, ignored, found, unfiltered if ignored else None)


def drop_secret_routing(values: dict[str, Any]) -> dict[str, Any]:
    """Remove the `SECRET_ROUTING` keys from `values` in place; return them flattened (dotted key: value)."""
    dropped: dict[str, Any] = {}
    for dotted in SECRET_ROUTING:
        *parents, leaf = dotted.split(".")
        node: Any = values
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            dropped |= _flatten(dotted, node.pop(leaf))
    return dropped


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        return {key: v for name, item in value.items() for key, v in _flatten(f"{prefix}.{name}", item).items()}
    return {prefix: value}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    return parse_toml(path, _read_bytes(path))


def parse_toml(path: Path, content: bytes) -> dict[str, Any]:
    """A settings file's values (sections checked); `ConfigError` naming `path` on bad TOML."""
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the file's syntax") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        known = ", ".join(Settings.model_fields)
        raise ConfigError(f"{path}: unknown section '{unknown[0]}'", hint=f"expected one of: {known}")
    return data


def _env_values(environ: Mapping[str, str] | None) -> dict[str, Any]:
    source = EnvSettingsSource(Settings, case_sensitive=False)
    if environ is not None:
        source.env_vars = {k.lower(): v for k, v in environ.items()}
    try:
        return source()
    except Exception as exc:  # pydantic-settings raises SettingsError on malformed JSON values
        raise ConfigError(f"environment: {exc}", hint=f"check the {ENV_PREFIX}* variables") from None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(layers: list[Layer]) -> tuple[Settings, list[Layer]]:
    if any(layer.unfiltered is not None for layer in layers):
        _validate([replace(layer, values=layer.unfiltered or layer.values) for layer in layers])
    return _validate(layers), layers


def _validate(layers: list[Layer]) -> Settings:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer.values)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, layers) from None


def _config_error(exc: ValidationError, layers: list[Layer]) -> ConfigError:
    first = exc.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    key = ".".join(loc)
    origin = source_of(loc, layers)
    if origin == "environment":
        origin = f"environment {ENV_PREFIX}{'__'.join(loc).upper()}"
    got = f" (got {first['input']!r})" if first["type"] != "extra_forbidden" else ""
    reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].lower()
    return ConfigError(f"{origin}: {key}: {reason}{got}", hint=_expected(loc))


def _expected(loc: tuple[str, ...]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type):
            return "see `workbench config show`"
        model = field.annotation
    field = model.model_fields.get(loc[-1])
    if field is None:
        return f"known keys: {', '.join(model.model_fields)}"
    return f"expected {_type_name(field.annotation)}: {field.description or ''}".strip()


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def source_of(loc: tuple[str, ...], layers: list[Layer]) -> str:
    """Name of the highest-precedence layer that sets the value at `loc`, or "default"."""
    for layer in reversed(layers):
        node: Any = layer.values
        for part in loc:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            return layer.name
    return "default"


def hub_connection(settings: Settings) -> HubConnection:
    """The hub connection these settings describe (the token stays None to let huggingface_hub
    fall back to `HF_TOKEN` or its token file)."""
    token = settings.hub.token.get_secret_value() if settings.hub.token else None
    return HubConnection(
        endpoint=settings.hub.endpoint,
        token=token,
        cache_dir=settings.hub.cache_dir,
        timeout=settings.hub.timeout,
    )


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
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def chat_endpoints(settings: Settings) -> EndpointPolicy:
    """The endpoints the user trusts with an API key (`[chat.endpoints]`); no other gets one."""
    from services.chat.remote import Endpoint, EndpointPolicy

    endpoints = tuple(Endpoint(name, e.url, e.api_key_env) for name, e in settings.chat.endpoints.items())
    where = f"add it to [chat.endpoints] in your user settings ({locations.user_config_file()})"
    return EndpointPolicy(endpoints, allow_hint=where)


def azure_target(settings: Settings, env: str, *, credential: Any = None) -> AzureTarget:
    """Where environment `env` lives in Azure, from the `azure` section (credentials stay out of settings)."""
    from services.infra.arm import AzureTarget

    azure = settings.azure
    return AzureTarget(
        subscription_id=azure.subscription_id,
        resource_group=azure.resource_group.replace("{env}", env),
        location=azure.location,
        endpoint=azure.arm_endpoint,
        ca_bundle=azure.ca_bundle,
        poll_seconds=azure.poll_seconds,
        credential=credential,
    )


def artifacts_for(settings: Settings) -> Artifacts:
    """The workspace's artifacts, with the remote storage the `artifacts` section describes."""
    from services.artifacts.workspace import Artifacts

    section = settings.artifacts
    return Artifacts(settings.workspace.data_dir, open_remote=lambda: remote_storage(section), workers=section.workers)


def remote_storage(section: ArtifactsSettings) -> Storage | None:
    """The remote: a shared folder, else Azure Blob Storage (connection string, else endpoint + Azure identity)."""
    if section.remote_dir is not None:
        from services.artifacts.storage import LocalFolderStorage

        return LocalFolderStorage(section.remote_dir)
    secret = section.connection_string.get_secret_value() if section.connection_string else None
    if not (secret or section.blob_endpoint):
        return None
    from services.artifacts.blob import open_blob_storage

    models, datasets = section.models_container, section.datasets_container
    containers = {"adapter": models, "merged-model": models, "dataset": datasets, "collection": datasets}
    return open_blob_storage(containers=containers, account_url=section.blob_endpoint, connection_string=secret)


def configured_targets(settings: Settings) -> list[str]:
    """Names of the deploy targets the `targets` section sets, in order (dev, staging, prod)."""
    return [name for name in TargetsSettings.model_fields if getattr(settings.targets, name) is not None]


def deploy_target(settings: Settings, name: str) -> Target:
    """The deploy target `name` (dev, staging or prod) from the `targets` section."""
    from services.deploy.target import AppSpec, Target

    section = getattr(settings.targets, name, None) if name in TargetsSettings.model_fields else None
    if section is None:
        raise ConfigError(
            f"no deploy target {name!r} is configured",
            hint=f"add [targets.{name}] with `host` (and [targets.{name}.apps.APP] with `port`) to workbench.toml",
        )
    apps = {
        app: AppSpec(
            name=app,
            port=a.port or section.app_port,
            artifacts=dict(a.artifacts),
            env=dict(a.env),
            api_keys_env=a.api_keys_env,
            api_keys_file_env=a.api_keys_file_env,
            gpus=a.gpus,
            memory=a.memory,
            cpus=a.cpus,
            suite=a.suite,
            ready_timeout_s=a.ready_timeout_s,
        )
        for app, a in section.apps.items()
    }
    return Target(
        name=name,
        docker_host=section.docker_host or f"ssh://{section.user}@{section.host}:{section.ssh_port}",
        environment=name,
        apps=apps,
        identity_file=section.identity_file,
        known_hosts=section.known_hosts,
        keep=section.keep,
        proxy_image=section.proxy_image,
        registry=section.registry,
    )


def infra_values(env: str, outputs: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """Settings sections from a deployment's outputs: `targets.<env>` always; `registry` and
    `artifacts` from dev (where the team pushes and stores), or from any environment while unset."""
    host = outputs.get("deployVmFqdn") or outputs.get("deployVmPublicIp") or outputs.get("deployVmPrivateIp")
    target = {
        "host": host,
        "user": outputs.get("adminUsername"),
        "app_port": outputs.get("appPort"),
        "registry": outputs.get("registryLoginServer"),
    }
    values: dict[str, Any] = {"targets": {env: _present(target)}} if host else {}
    shared = {
        "registry": {"login_server": outputs.get("registryLoginServer")},
        "artifacts": {"blob_endpoint": outputs.get("storageBlobEndpoint")},
    }
    for section, entries in shared.items():
        unset = not any((current.get(section) or {}).get(key) for key in entries)
        if (env == "dev" or unset) and _present(entries):
            values[section] = _present(entries)
    return values


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}


def save_infra_outputs(
    *, env: str, outputs: Mapping[str, Any], user_file: Path | None = None
) -> tuple[Path, list[str]]:
    """Write a deployment's outputs into the user settings file; returns the file and the keys written.

    Other sections and keys of the file are kept (its comments are not: the file is rewritten).
    """
    import tomli_w

    path = user_file or locations.user_config_file()
    current = _read_toml(path) if path.is_file() else {}
    values = infra_values(env, outputs, current)
    merged = _merge(current, values)
    try:
        Settings.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, [Layer(str(path), merged)]) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(tomli_w.dumps(merged), encoding="utf-8")
    os.replace(partial, path)
    written = [f"{section}.{key}" for section, entries in values.items() for key in entries]
    return path, written
