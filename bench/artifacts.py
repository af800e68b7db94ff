"""Artifact push and pull vs a plain azure-storage-blob loop, on the same Azurite, in the same run.

The artifact is 500 MB: a few large files (weights) and many small ones (tokenizer, configs, shards).
The peer uploads (and downloads) the same files one by one with the SDK's defaults, which is what
a script without a transfer engine does. Goals (the artifacts issue): push and pull >= 2x the peer;
a re-push of unchanged files in under 5 % of the first push's time.

Needs Azurite from `scripts/testbed up`. `python -m bench artifacts`.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path

LARGE = (4, 110_000_000)
SMALL = (600, 100_000)


def make_artifact(root: Path) -> Path:
    folder = root / "src"
    (folder / "shards").mkdir(parents=True)
    for i in range(LARGE[0]):
        (folder / f"model-{i:05d}-of-{LARGE[0]:05d}.safetensors").write_bytes(os.urandom(LARGE[1]))
    for i in range(SMALL[0]):
        (folder / "shards" / f"part-{i:04d}.json").write_bytes(os.urandom(SMALL[1]))
    return folder


def peer_upload(service: object, container: str, folder: Path) -> float:
    """Every file uploaded one after the other with `upload_blob` (SDK defaults)."""
    client = service.get_container_client(container)  # type: ignore[attr-defined]
    client.create_container()
    started = time.perf_counter()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as data:
            client.upload_blob(path.relative_to(folder).as_posix(), data, overwrite=True)
    return time.perf_counter() - started


def peer_download(service: object, container: str, dest: Path) -> float:
    client = service.get_container_client(container)  # type: ignore[attr-defined]
    started = time.perf_counter()
    for name in client.list_blob_names():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            client.download_blob(name).readinto(out)
    return time.perf_counter() - started


def main() -> None:
    from azure.storage.blob import BlobServiceClient

    from services.artifacts.model import parse_ref
    from services.artifacts.workspace import Artifacts
    from tests.integration.artifact_support import azurite_storage, connection_string

    tag = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        root = Path(tmp)
        folder = make_artifact(root)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        service = BlobServiceClient.from_connection_string(connection_string())
        print(f"artifact: {count} files, {size / 1e6:.0f} MB (Azurite, 2-core machine)")

        peer_up = peer_upload(service, f"peer-{tag}", folder)
        peer_down = peer_download(service, f"peer-{tag}", root / "peer-down")

        alice = Artifacts(root / "alice", open_remote=lambda: azurite_storage(tag))
        alice.local.register("merged-model", "bench-model", "v1", folder, lineage={}, actor="bench")
        push = alice.push(parse_ref("bench-model@v1")).seconds
        repush = alice.push(parse_ref("bench-model@v1")).seconds
        remote = azurite_storage(tag)
        remote.delete("merged-model/bench-model/v1/manifest.json")  # as if the push had died at the very end
        resume = alice.push(parse_ref("bench-model@v1")).seconds
        bob = Artifacts(root / "bob", open_remote=lambda: azurite_storage(tag))
        pull = bob.pull(parse_ref("bench-model@v1")).seconds

        for what, ours, peer in (("push", push, peer_up), ("pull", pull, peer_down)):
            print(
                f"{what}: workbench {ours:.2f} s ({size / ours / 1e6:.0f} MB/s) vs plain azure-storage-blob loop "
                f"{peer:.2f} s ({size / peer / 1e6:.0f} MB/s) -> speed-up {peer / ours:.2f}x (goal >= 2x)"
            )
        print(f"re-push, version published: {repush:.3f} s = {repush / push:.1%} of the first push (goal < 5%)")
        print(f"re-push, all files there, manifest missing: {resume:.3f} s = {resume / push:.1%} of the first push")
        for container in (f"peer-{tag}", f"m-{tag}", f"d-{tag}"):
            with suppress(Exception):  # a container the run never made
                service.delete_container(container)


if __name__ == "__main__":
    main()
