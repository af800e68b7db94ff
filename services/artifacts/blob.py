"""Azure Blob Storage as artifact storage, through the real `azure-storage-blob` client.

Adapters and merged models go to the models container, datasets and collections to the datasets
container; inside each the key layout is the same as in a folder. Each file's sha256 is stored as
blob metadata, so a resumed push lists what is already there in one call. `create` is a
conditional put (If-None-Match: *), which the service applies atomically.

Credentials: `DefaultAzureCredential` (Azure CLI login, the VM's managed identity, a service
principal in the environment) for an account URL; a connection string only for the emulator or
development. Neither ever reaches a message: errors carry the status and Azure's error code only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.artifacts.model import kind_of
from services.errors import AccessDeniedError, CredentialsError, NotFoundError, StorageUnavailableError

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, ContainerClient

    from services.artifacts.storage import OnBytes

MAX_CONCURRENCY = 2
"""Parallel block transfers within one large file (files themselves also move in parallel)."""
BLOCK_BYTES = 16 << 20
"""Block (and download chunk) size: fewer, larger requests than the SDK's 4 MiB, with bounded memory
(files in flight x MAX_CONCURRENCY x BLOCK_BYTES)."""
TRANSFER_OPTIONS: dict[str, Any] = {
    "max_block_size": BLOCK_BYTES,
    "max_single_put_size": BLOCK_BYTES,
    "max_chunk_get_size": BLOCK_BYTES,
}


class BlobStorage:
    """Artifact storage in an Azure Storage account."""

    def __init__(self, service: BlobServiceClient, containers: Mapping[str, str]) -> None:
        """`containers` maps an artifact kind to its container name."""
        self._service = service
        self._containers = dict(containers)
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"Azure Blob Storage {self._service.url.rstrip('/')}"

    def read(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(key):
            try:
                return bytes(self._blob(key).download_blob().readall())
            except ResourceNotFoundError:
                return None

    def create(self, key: str, data: bytes) -> bool:
        from azure.core.exceptions import ResourceExistsError

        with self._errors(key):
            try:
                self._blob(key, writing=True).upload_blob(data, overwrite=False)
            except ResourceExistsError:
                return False
        return True

    def write(self, key: str, data: bytes) -> None:
        with self._errors(key):
            self._blob(key, writing=True).upload_blob(data, overwrite=True)

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(key), suppress(ResourceNotFoundError):
            self._blob(key).delete_blob()

    def keys(self, prefix: str) -> list[str]:
        return sorted(name for name, _ in self._listing(prefix))

    def hashes(self, prefix: str) -> dict[str, str]:
        return {name: meta["sha256"] for name, meta in self._listing(prefix) if meta.get("sha256")}

    def upload(self, key: str, source: Path, *, sha256: str, on_bytes: OnBytes) -> None:
        with self._errors(key), source.open("rb") as data:
            self._blob(key, writing=True).upload_blob(
                data,
                length=source.stat().st_size,
                overwrite=True,
                metadata={"sha256": sha256},
                max_concurrency=MAX_CONCURRENCY,
                progress_hook=_deltas(on_bytes),
            )

    def download(self, key: str, dest: Path, *, on_bytes: OnBytes) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(key), dest.open("wb") as out:
            try:
                stream = self._blob(key).download_blob(max_concurrency=MAX_CONCURRENCY, progress_hook=_deltas(on_bytes))
            except ResourceNotFoundError:
                raise NotFoundError(f"{key} is missing from {self.description}") from None
            stream.readinto(out)

    def _listing(self, prefix: str) -> list[tuple[str, dict[str, str]]]:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(prefix):
            try:
                blobs = self._container(prefix).list_blobs(name_starts_with=prefix + "/", include=["metadata"])
                return [(b.name, dict(b.metadata or {})) for b in blobs]
            except ResourceNotFoundError:  # the container is made on first write
                return []

    def _container(self, key: str) -> ContainerClient:
        kind = kind_of(key)
        if kind not in self._containers:
            raise NotFoundError(f"no container is configured for artifacts of kind {kind!r}")
        return self._service.get_container_client(self._containers[kind])

    def _blob(self, key: str, *, writing: bool = False) -> Any:
        container = self._container(key)
        if writing:
            self._ensure(container)
        return container.get_blob_client(key)

    def _ensure(self, container: ContainerClient) -> None:
        """Create the container on first write (ARM makes them in Azure; the emulator starts empty)."""
        from azure.core.exceptions import ResourceExistsError

        with self._lock:
            if container.container_name in self._ready:
                return
            with suppress(ResourceExistsError):
                container.create_container()
            self._ready.add(container.container_name)

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Azure's exceptions as workbench errors that name the key and never a credential."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

        try:
            yield
        except ClientAuthenticationError as exc:
            raise CredentialsError(
                f"{self.description} refused the credentials ({_code(exc)}) while accessing {key}",
                hint="sign in with `az login`, check the VM's managed identity, or the connection string",
            ) from None
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise AccessDeniedError(
                    f"{self.description}: access to {key} denied ({_code(exc)})",
                    hint="the identity needs the Storage Blob Data Contributor role on the account",
                ) from None
            raise StorageUnavailableError(f"{self.description}: {key}: HTTP {exc.status_code} {_code(exc)}") from None
        except ServiceRequestError as exc:
            raise StorageUnavailableError(
                f"cannot reach {self.description} ({type(exc).__name__})",
                hint="check artifacts.blob_endpoint and the network; run it again to resume",
            ) from None


def _code(exc: Any) -> str:
    return str(getattr(exc, "error_code", None) or getattr(exc, "reason", None) or type(exc).__name__)


def _deltas(on_bytes: OnBytes) -> Callable[[int, int | None], None]:
    """The SDK reports cumulative bytes; turn them into increments."""
    seen = [0]

    def hook(current: int, total: int | None) -> None:
        on_bytes(current - seen[0])
        seen[0] = current

    return hook


def open_blob_storage(
    *, containers: Mapping[str, str], account_url: str | None = None, connection_string: str | None = None
) -> BlobStorage:
    """Blob storage from a connection string (emulator, development) or an account URL with Azure identity."""
    from azure.storage.blob import BlobServiceClient

    if connection_string:
        try:
            service = BlobServiceClient.from_connection_string(connection_string, **TRANSFER_OPTIONS)
        except ValueError:
            raise CredentialsError(
                "the artifacts connection string is malformed", hint="check WORKBENCH_ARTIFACTS__CONNECTION_STRING"
            ) from None
    elif account_url:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        service = BlobServiceClient(account_url, credential=credential, **TRANSFER_OPTIONS)
    else:
        raise NotFoundError("no artifact storage is configured", hint="set artifacts.blob_endpoint")
    return BlobStorage(service, containers)
