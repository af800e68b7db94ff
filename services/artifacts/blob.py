"""Azure Blob Storage as artifact storage, through the real `azure-storage-blob` client.

Adapters and merged models go to the models container, datasets and collections to the datasets
container; inside each the key layout is the same as in a folder. Each file's sha256 is stored as
blob metadata, so a resumed push lists what is already there in one call. `create` is a
conditional put (If-None-Match: *), which the service applies atomically.

Transfers read and write each file once: an upload hashes the bytes as it reads them and makes the
blob visible (one Put Blob for a small file, Put Block List after the staged blocks of a large one)
only when they hash to the manifest's sha256; a download hashes the bytes as it writes them. Every
request goes through one pool of keep-alive connections, sized for the parallel transfers.

Credentials: `DefaultAzureCredential` (Azure CLI login, the VM's managed identity, a service
principal in the environment) for an account URL; a connection string only for the emulator or
development. Neither ever reaches a message: errors carry the status and Azure's error code only.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from services.artifacts.model import kind_of
from services.artifacts.storage import SourceChangedError
from services.errors import AccessDeniedError, CredentialsError, NotFoundError, StorageUnavailableError

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, ContainerClient

    from services.artifacts.storage import OnBytes

MAX_CONCURRENCY = 2
"""Blocks of one large file staged at the same time (files themselves also move in parallel)."""
BLOCK_BYTES = 16 << 20
"""Block (and download chunk) size: fewer, larger requests than the SDK's 4 MiB, with bounded memory
(files in flight x (MAX_CONCURRENCY + 1) x BLOCK_BYTES). Files up to this size go up in one request."""
POOL_CONNECTIONS = 64
"""Keep-alive connections kept open (requests' default of 10 would close and reopen the rest)."""


class BlobStorage:
    """Artifact storage in an Azure Storage account."""

    def __init__(
        self, service: BlobServiceClient, containers: Mapping[str, str], *, block_bytes: int = BLOCK_BYTES
    ) -> None:
        """`containers` maps an artifact kind to its container name; files larger than `block_bytes` go
        up in blocks of that size."""
        self._service = service
        self._block_bytes = block_bytes
        self._containers = dict(containers)
        self._ready: set[str] = set()
        self._clients: dict[str, ContainerClient] = {}
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
            blob = self._blob(key, writing=True)
            metadata = {"sha256": sha256}
            if os.fstat(data.fileno()).st_size <= self._block_bytes:
                body = data.read(self._block_bytes + 1)
                _check_source(hashlib.sha256(body).hexdigest(), sha256, source)
                blob.upload_blob(body, overwrite=True, metadata=metadata)
                on_bytes(len(body))
            else:
                blocks = _stage_blocks(blob, data, self._block_bytes, sha256, source, on_bytes)
                blob.commit_block_list(blocks, metadata=metadata)

    def download(self, key: str, dest: Path, *, on_bytes: OnBytes) -> str:
        from azure.core.exceptions import ResourceNotFoundError

        digest = hashlib.sha256()
        with self._errors(key), dest.open("wb") as out:
            blob = self._blob(key)
            try:
                first = blob.download_blob()  # the first block_bytes, the size and the ETag
            except ResourceNotFoundError:
                raise NotFoundError(f"{key} is missing from {self.description}") from None
            for chunk in _chunks_in_order(blob, first, self._block_bytes):
                digest.update(chunk)
                out.write(chunk)
                on_bytes(len(chunk))
        return digest.hexdigest()

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
        name = self._containers[kind]
        client = self._clients.get(name)
        if client is None:  # one client per container: its pipeline and connections are shared anyway
            client = self._clients.setdefault(name, self._service.get_container_client(name))
        return client

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


def _stage_blocks(
    blob: Any, data: IO[bytes], block_bytes: int, sha256: str, source: Path, on_bytes: OnBytes
) -> list[str]:
    """Stage `data` as blocks (MAX_CONCURRENCY in flight), hashing it on the way; the block ids once the
    bytes hash to `sha256`, SourceChangedError (nothing committed, so nothing visible) otherwise."""
    prefix = uuid.uuid4().hex  # ids of one upload never mix with the uncommitted blocks of another
    digest, ids = hashlib.sha256(), list[str]()
    in_flight: deque[Future[None]] = deque()

    def stage(block_id: str, block: bytes) -> None:
        blob.stage_block(block_id, block, length=len(block))
        on_bytes(len(block))

    with ThreadPoolExecutor(MAX_CONCURRENCY, thread_name_prefix="stage-block") as pool:
        while block := data.read(block_bytes):
            digest.update(block)
            ids.append(f"{prefix}-{len(ids):06d}")
            in_flight.append(pool.submit(stage, ids[-1], block))
            if len(in_flight) >= MAX_CONCURRENCY:
                in_flight.popleft().result()
        for future in in_flight:
            future.result()
    _check_source(digest.hexdigest(), sha256, source)
    return ids


def _chunks_in_order(blob: Any, first: Any, block_bytes: int) -> Iterator[bytes]:
    """The blob's bytes in order: those of the first GET, then ranges of the same ETag fetched
    MAX_CONCURRENCY at a time (so a large file downloads in parallel and is still hashed in order)."""
    from azure.core import MatchConditions

    size, etag = first.size, first.properties.etag
    yield first.read(min(size, block_bytes))

    def fetch(offset: int) -> bytes:
        length = min(block_bytes, size - offset)
        return bytes(
            blob.download_blob(offset, length, etag=etag, match_condition=MatchConditions.IfNotModified).readall()
        )

    with ThreadPoolExecutor(MAX_CONCURRENCY, thread_name_prefix="get-range") as pool:
        window: deque[Future[bytes]] = deque()
        for offset in range(block_bytes, size, block_bytes):
            window.append(pool.submit(fetch, offset))
            if len(window) >= MAX_CONCURRENCY:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _check_source(actual: str, expected: str, source: Path) -> None:
    if actual != expected:
        raise SourceChangedError(f"{source} does not hash to {expected[:12]}… any more; nothing was stored")


def _code(exc: Any) -> str:
    return str(getattr(exc, "error_code", None) or getattr(exc, "reason", None) or type(exc).__name__)


def open_blob_storage(
    *,
    containers: Mapping[str, str],
    account_url: str | None = None,
    connection_string: str | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> BlobStorage:
    """Blob storage from a connection string (emulator, development) or an account URL with Azure identity."""
    from azure.storage.blob import BlobServiceClient

    session = _pooled_session()
    options = _transfer_options(block_bytes) | {
        "session": session,
        "session_owner": False,
        "connection_verify": _ca_bundle(),
    }
    if connection_string:
        try:
            service = BlobServiceClient.from_connection_string(connection_string, **options)
        except ValueError:
            raise CredentialsError(
                "the artifacts connection string is malformed", hint="check WORKBENCH_ARTIFACTS__CONNECTION_STRING"
            ) from None
    elif account_url:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        service = BlobServiceClient(account_url, credential=credential, **options)
    else:
        raise NotFoundError("no artifact storage is configured", hint="set artifacts.blob_endpoint")
    _settle_proxies(session, service.url)
    return BlobStorage(service, containers, block_bytes=block_bytes)


def _transfer_options(block_bytes: int) -> dict[str, Any]:
    """The SDK's sizes: blocks, single puts, the first GET and every further ranged GET."""
    names = ("max_block_size", "max_single_put_size", "max_single_get_size", "max_chunk_get_size")
    return dict.fromkeys(names, block_bytes)


def _pooled_session() -> Any:
    """A requests session for the SDK's transport that keeps POOL_CONNECTIONS connections alive; the
    adapter retries nothing (the pipeline's retry policy does)."""
    import requests
    from urllib3.util.retry import Retry

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_maxsize=POOL_CONNECTIONS, max_retries=Retry(total=False, redirect=False, raise_on_status=False)
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session


def _settle_proxies(session: Any, url: str) -> None:
    """Read the proxy variables (HTTPS_PROXY, NO_PROXY, ...) for `url` once, instead of requests scanning
    the environment (and ~/.netrc, whose login would replace the SDK's Authorization) on every request."""
    import requests

    session.proxies = requests.utils.get_environ_proxies(url)
    session.trust_env = False


def _ca_bundle() -> str | bool:
    """The CA bundle requests would take from the environment on every request (True: its default)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
