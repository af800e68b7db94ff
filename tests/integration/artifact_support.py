"""Remote storages for the artifact tests: Azurite through the real azure-storage-blob client, and a folder.

Azurite is started by `scripts/testbed up`; without it these tests skip on a developer machine and
fail under CI=true.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path

from services.artifacts.blob import BlobStorage, open_blob_storage
from services.artifacts.storage import Storage
from tests.testbed import read_testbed

AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""The emulator's published development key (the only key Azurite accepts by default)."""


def azurite_url() -> str:
    return read_testbed()["WORKBENCH_TESTBED_AZURITE_BLOB_URL"]


def connection_string(key: str = AZURITE_KEY) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={azurite_url()};"


MADE: set[str] = set()
"""Every container name handed out in this session, deleted when it ends (`delete_made_containers`)."""


def containers(tag: str) -> dict[str, str]:
    """Containers of their own for one test, so tests never see each other's blobs."""
    models, datasets = f"m-{tag}", f"d-{tag}"
    MADE.update((models, datasets))
    return {"adapter": models, "merged-model": models, "dataset": datasets, "collection": datasets}


def delete_made_containers() -> None:
    """Remove this session's containers from Azurite, so test runs do not fill the disk."""
    if not MADE:
        return
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(connection_string()) as service:
        for name in sorted(MADE):
            with contextlib.suppress(ResourceNotFoundError):
                service.delete_container(name)
    MADE.clear()


def azurite_storage(tag: str | None = None, *, key: str = AZURITE_KEY, block_bytes: int | None = None) -> BlobStorage:
    """Azurite as artifact storage; `block_bytes` lowers the size above which files go up in blocks."""
    sizes = {"block_bytes": block_bytes} if block_bytes else {}
    return open_blob_storage(
        containers=containers(tag or uuid.uuid4().hex[:12]), connection_string=connection_string(key), **sizes
    )


def storage_factory(kind: str, tmp_path: Path) -> Callable[[], Storage]:
    """A factory opening the same remote each time (as two workspaces or processes would)."""
    if kind == "folder":
        from services.artifacts.storage import LocalFolderStorage

        root = tmp_path / "remote"
        return lambda: LocalFolderStorage(root)
    tag = uuid.uuid4().hex[:12]
    azurite_url()
    return lambda: azurite_storage(tag)


def remote_env(kind: str, tmp_path: Path, tag: str) -> dict[str, str]:
    """Settings variables pointing the CLI at the same remote as `storage_factory` would."""
    if kind == "folder":
        return {"WORKBENCH_ARTIFACTS__REMOTE_DIR": str(tmp_path / "remote")}
    names = containers(tag)
    return {
        "WORKBENCH_ARTIFACTS__CONNECTION_STRING": connection_string(),
        "WORKBENCH_ARTIFACTS__MODELS_CONTAINER": names["adapter"],
        "WORKBENCH_ARTIFACTS__DATASETS_CONTAINER": names["dataset"],
    }
