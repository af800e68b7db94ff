"""The composition root: `Services` turns settings into every service client the workbench uses.

The CLI context and the app each hold one; use cases take it as their first argument. Nothing else
builds a hub connection, store, Chroma client, artifact storage, registry access, deploy target or
ARM target, so a test replaces one by handing in a `Services` whose method returns another (a
subclass, or `Services(settings, chroma=...)` for the common seams), never by patching a module global.
Heavy libraries load inside the methods, never at import.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import ConfigError
from services.hub.connection import HubConnection
from services.hub.disk import DiskProbe
from services.hub.disk import free_disk as disk_free
from workbench import locations
from workbench.config.schema import ArtifactsSettings, Settings
from workbench.config.targets import TargetsSettings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from services.artifacts.storage import Storage
    from services.artifacts.workspace import Artifacts
    from services.chat.remote import EndpointPolicy
    from services.chat.session import ChatEngine
    from services.deploy.target import Target
    from services.gpu import Gpu
    from services.gpuqueue.queue import GpuQueue
    from services.images.credentials import RegistryAccess
    from services.images.ops import ImagesConfig
    from services.infra.arm.session import AzureTarget
    from services.store import Store

ClientFactory = Callable[[], "ClientAPI"]


class Services:
    """Every service client the settings describe, built on first use.

    `chroma`: a Chroma client factory to use instead of the one the `rag` section describes.
    `gpus`: GPUs to assume instead of detecting them (tests, snapshots); None detects.
    `clock` and `free_disk`: the time now and the free bytes on a path's disk, for what the front-ends
    show and the download pre-check decides (tests and snapshots fix them; by default the real ones).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        chroma: ClientFactory | None = None,
        gpus: list[Gpu] | None = None,
        clock: Callable[[], datetime] | None = None,
        free_disk: DiskProbe | None = None,
    ) -> None:
        self.settings = settings
        self.gpus = gpus
        self._chroma = chroma
        self.clock = clock or (lambda: datetime.now(UTC))
        self.free_disk: DiskProbe = free_disk or disk_free

    # ------------------------------------------------------------------ workspace and hub

    @cached_property
    def hub(self) -> HubConnection:
        """The hub connection (the token stays None to let huggingface_hub fall back to `HF_TOKEN`
        or its token file)."""
        hub = self.settings.hub
        token = hub.token.get_secret_value() if hub.token else None
        return HubConnection(endpoint=hub.endpoint, token=token, cache_dir=hub.cache_dir, timeout=hub.timeout)

    @property
    def cache_dir(self) -> Path:
        """The HF hub cache models are downloaded into and loaded from."""
        return self.hub.cache_path

    @property
    def data_dir(self) -> Path:
        """The workspace folder: the SQLite store, job folders and demo files."""
        return self.settings.workspace.data_dir

    def store(self) -> Store:
        """The workspace's SQLite store."""
        from services.store import Store

        return Store(self.data_dir)

    def gpu_queue(self) -> GpuQueue:
        """The machine's shared GPU queue, or this workspace's when the machine has none for us."""
        from services.gpuqueue.queue import GpuQueue
        from services.gpuqueue.slots import slots_of

        queue = GpuQueue.for_workspace(self.data_dir, self.settings.server.state_dir)
        if self.gpus is not None:
            gpus = self.gpus
            queue.slots = lambda: slots_of(gpus)
        return queue

    # ------------------------------------------------------------------ RAG and chat

    def chroma_factory(self) -> ClientFactory:
        """A factory of the Chroma client (embedded or HTTP, as the `rag` section says)."""
        if self._chroma is not None:
            return self._chroma
        rag, data_dir = self.settings.rag, self.data_dir

        def open_chroma() -> ClientAPI:
            from services.rag.chroma import open_client

            return open_client(rag, data_dir=data_dir)

        return open_chroma

    def chroma(self) -> ClientAPI:
        """A Chroma client (opens the store: call it from a worker or a command)."""
        return self.chroma_factory()()

    def chat_endpoints(self) -> EndpointPolicy:
        """The endpoints the user trusts with an API key (`[chat.endpoints]`); no other gets one."""
        from services.chat.remote import Endpoint, EndpointPolicy

        configured = self.settings.chat.endpoints.items()
        endpoints = tuple(Endpoint(name, e.url, e.api_key_env) for name, e in configured)
        where = f"add it to [chat.endpoints] in your user settings ({locations.user_config_file()})"
        return EndpointPolicy(endpoints, allow_hint=where)

    def chat_engine(self, endpoints: EndpointPolicy | None = None) -> ChatEngine:
        """A chat engine for local models, the Chroma store and `endpoints` (default: the trusted ones)."""
        from services.chat.session import ChatEngine

        return ChatEngine(
            cache_dir=self.cache_dir,
            rag_client_factory=self.chroma_factory(),
            endpoints=endpoints or self.chat_endpoints(),
            hold_gpu=lambda name: self.gpu_queue().hold_for_chat(name, device_index=0),
        )

    # ------------------------------------------------------------------ artifacts

    def artifacts(self) -> Artifacts:
        """The workspace's artifacts, with the remote storage the `artifacts` section describes."""
        from services.artifacts.workspace import Artifacts

        section = self.settings.artifacts
        return Artifacts(self.data_dir, open_remote=lambda: remote_storage(section), workers=section.workers)

    # ------------------------------------------------------------------ images and registry

    def registry_access(self, *, credential: Any = None) -> RegistryAccess:
        """The registry the `registry` section describes (the password stays in its environment variable)."""
        from services.images.credentials import RegistryAccess

        registry = self.settings.registry
        return RegistryAccess(
            server=registry.login_server,
            auth=registry.auth,
            username=registry.username,
            password_env=registry.password_env,
            plain_http=registry.plain_http,
            credential=credential,
        )

    def images_config(self, *, credential: Any = None) -> ImagesConfig:
        """Apps, base images, the Docker engine and the registry from the `images` and `registry` sections."""
        from services.images.ops import ImagesConfig

        images = self.settings.images
        return ImagesConfig(
            apps_dir=images.apps_dir,
            app_dirs=images.app_dirs,
            base_image=images.base_image,
            base_images=dict(images.base_images),
            docker_host=images.docker_host,
            registry=self.registry_access(credential=credential),
        )

    def registry_auth(self) -> dict[str, str] | None:
        """docker-py `auth_config` for the registry (None: pull anonymously); the secret stays out of argv."""
        from services.images.registry import resolve_credentials

        if not self.settings.registry.login_server:
            return None
        credentials = resolve_credentials(self.registry_access())
        return credentials.auth_config() if credentials else None

    # ------------------------------------------------------------------ deploy and infra

    def configured_targets(self) -> list[str]:
        """Names of the deploy targets the `targets` section sets, in order (dev, staging, prod)."""
        return [name for name in TargetsSettings.model_fields if getattr(self.settings.targets, name) is not None]

    def deploy_target(self, name: str) -> Target:
        """The deploy target `name` (dev, staging or prod) from the `targets` section."""
        return deploy_target(self.settings, name)

    def azure_target(self, env: str, *, credential: Any = None) -> AzureTarget:
        """Where environment `env` lives in Azure, from the `azure` section (credentials stay out of settings)."""
        from services.infra.arm.session import AzureTarget

        azure = self.settings.azure
        return AzureTarget(
            subscription_id=azure.subscription_id,
            resource_group=azure.resource_group.replace("{env}", env),
            location=azure.location,
            endpoint=azure.arm_endpoint,
            ca_bundle=azure.ca_bundle,
            poll_seconds=azure.poll_seconds,
            credential=credential,
        )


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


def deploy_target(settings: Settings, name: str) -> Target:
    """The deploy target `name` (dev, staging or prod) from the `targets` section."""
    from services.deploy.target import AppSpec, Target, Tls

    section = getattr(settings.targets, name, None) if name in TargetsSettings.model_fields else None
    if section is None:
        raise ConfigError(
            f"no deploy target {name!r} is configured",
            hint=f"add [targets.{name}] with `host` (and [targets.{name}.apps.APP] with `port`) to workbench.toml",
        )
    apps = {
        app: AppSpec(
            name=app,
            port=a.port or section.default_port,
            artifacts=dict(a.artifacts),
            env=dict(a.env),
            api_keys_env=a.api_keys_env,
            api_keys_file_env=a.api_keys_file_env,
            gpus=a.gpus,
            memory=a.memory,
            cpus=a.cpus,
            suite=a.suite,
            ready_timeout_s=a.ready_timeout_s,
            drain_timeout_s=a.drain_timeout_s,
            keep_previous_warm=a.keep_previous_warm,
            replicas=a.replicas,
        )
        for app, a in section.apps.items()
    }
    engines = tuple(f"ssh://{section.user}@{host}:{section.ssh_port}" for host in section.all_hosts)
    return Target(
        name=name,
        docker_host=section.docker_host or engines[0],
        hosts=engines if len(engines) > 1 else (),
        environment=name,
        apps=apps,
        identity_file=section.identity_file,
        known_hosts=section.known_hosts,
        keep=section.keep,
        proxy_image=section.proxy_image,
        registry=section.registry,
        tls=Tls(section.tls_cert, section.tls_key, section.plain_http)
        if section.tls_cert is not None and section.tls_key is not None
        else None,
    )
