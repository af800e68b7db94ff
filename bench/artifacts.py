"""Artifact push and pull vs a plain azure-storage-blob loop, on the same Azurite, in the same run.

The artifact is 500 MB: a few large files (weights) and many small ones (tokenizer, configs, shards).
The peer uploads (and downloads) the same files one by one with the SDK's defaults, which is what
a script without a transfer engine does. Ours moves files in parallel, large ones in blocks, and the
small ones in packs (services/artifacts/packs.py): 4 requests instead of 600. Goals (the artifacts
issue): push and pull >= 2x the peer; a re-push of unchanged files in under 5 % of the first push's time.

The machine is shared and noisy, so the two run interleaved: ROUNDS rounds (`BENCH_ROUNDS`), each
with fresh containers and workspaces, the peer first in odd rounds and ours first in even ones;
every round's figures are printed, then the median ratios.

Needs Azurite from `scripts/testbed up`. `python -m bench artifacts`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

LARGE = (4, 110_000_000)
SMALL = (600, 100_000)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


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


def in_order(round_no: int, peer: Callable[[], float], ours: Callable[[], float]) -> tuple[float, float]:
    """Both timings, the peer first in odd rounds and ours first in even ones; (ours, peer). Each starts
    once the disk has written what came before (a step's writes are not left for the next to wait on)."""

    def timed(step: Callable[[], float]) -> float:
        os.sync()
        return step()

    if round_no % 2:
        peer_s = timed(peer)
        return timed(ours), peer_s
    ours_s = timed(ours)
    return ours_s, timed(peer)


def one_round(service: object, folder: Path, root: Path, round_no: int) -> tuple[float, float, float, float]:
    """One round on fresh containers and workspaces: (push, peer push, pull, peer pull) in seconds."""
    from services.artifacts.model import parse_ref
    from services.artifacts.workspace import Artifacts
    from tests.integration.artifact_support import azurite_storage

    tag = uuid.uuid4().hex[:10]
    work = root / f"round-{round_no}"
    alice = Artifacts(work / "alice", open_remote=lambda: azurite_storage(tag))
    alice.local.register("merged-model", "bench-model", "v1", folder, lineage={}, actor="bench")
    bob = Artifacts(work / "bob", open_remote=lambda: azurite_storage(tag))
    try:
        push, peer_up = in_order(
            round_no,
            lambda: peer_upload(service, f"peer-{tag}", folder),
            lambda: alice.push(parse_ref("bench-model@v1")).seconds,
        )
        pull, peer_down = in_order(
            round_no,
            lambda: peer_download(service, f"peer-{tag}", work / "peer-down"),
            lambda: bob.pull(parse_ref("bench-model@v1")).seconds,
        )
        size = sum(f.size for f in alice.local.resolve(parse_ref("bench-model@v1")).files)
        print_ratios(f"round {round_no}", size, push, peer_up, pull, peer_down)
        if round_no == ROUNDS:
            resumed(alice, tag, push)
    finally:
        for container in (f"peer-{tag}", f"m-{tag}", f"d-{tag}"):
            with suppress(Exception):  # a container the run never made
                service.delete_container(container)  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
    return push, peer_up, pull, peer_down


def print_ratios(what: str, size: int, push: float, peer_up: float, pull: float, peer_down: float) -> None:
    for verb, ours, peer in (("push", push, peer_up), ("pull", pull, peer_down)):
        print(
            f"{what} {verb}: workbench {ours:.2f} s ({size / ours / 1e6:.0f} MB/s) vs plain azure-storage-blob loop "
            f"{peer:.2f} s ({size / peer / 1e6:.0f} MB/s) -> speed-up {peer / ours:.2f}x (goal >= 2x)",
            flush=True,
        )


def resumed(alice: object, tag: str, push: float) -> None:
    """A re-push of a published version, and one of a version whose files are all there but not its manifest."""
    from services.artifacts.model import parse_ref
    from tests.integration.artifact_support import azurite_storage

    repush = alice.push(parse_ref("bench-model@v1")).seconds  # type: ignore[attr-defined]
    azurite_storage(tag).delete("merged-model/bench-model/v1/manifest.json")  # as if the push had died at the end
    resume = alice.push(parse_ref("bench-model@v1")).seconds  # type: ignore[attr-defined]
    print(f"re-push, version published: {repush:.3f} s = {repush / push:.1%} of the first push (goal < 5%)")
    print(f"re-push, all files there, manifest missing: {resume:.3f} s = {resume / push:.1%} of the first push")


def main() -> None:
    from azure.storage.blob import BlobServiceClient

    from tests.integration.artifact_support import connection_string

    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        root = Path(tmp)
        folder = make_artifact(root)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        service = BlobServiceClient.from_connection_string(connection_string())
        print(f"artifact: {count} files, {size / 1e6:.0f} MB (Azurite, 2-core machine), {ROUNDS} rounds")
        rounds = [one_round(service, folder, root, n) for n in range(1, ROUNDS + 1)]
        push_x = statistics.median(peer / ours for ours, peer, _, _ in rounds)
        pull_x = statistics.median(peer / ours for _, _, ours, peer in rounds)
        print(f"median speed-up over {ROUNDS} rounds: push {push_x:.2f}x, pull {pull_x:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()
