"""Artifacts against real storage: Azurite through the real azure-storage-blob client, and a folder.

Every case runs on both backends: push, pull, round trip byte for byte, an upload killed halfway
then resumed, a corrupted blob detected on pull, concurrent pushes of one version, audited labels.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from services.artifacts import sync
from services.artifacts.model import Manifest, parse_ref
from services.artifacts.packs import INDEX, PACK_FILE_MAX, read_index
from services.artifacts.storage import LocalFolderStorage, Storage, copy_file
from services.artifacts.workspace import Artifacts
from services.errors import (
    AccessDeniedError,
    ArtifactInUseError,
    CredentialsError,
    IntegrityError,
    UsageError,
    VersionConflictError,
)
from services.store import Store
from tests.integration.artifact_support import azurite_storage, remote_env, storage_factory


def workspace(tmp_path: Path, name: str, open_remote: Callable[[], Storage], actor: str = "alice@dev") -> Artifacts:
    return Artifacts(tmp_path / name, open_remote=open_remote, actor=actor)


def adapter_folder(root: Path, *, seed: int = 0, big: int = 3_000_000, small: int = 12) -> Path:
    """An adapter-shaped folder: one large weights file, configs, and some small nested files."""
    root.mkdir(parents=True)
    rng = __import__("random").Random(seed)
    (root / "adapter_model.safetensors").write_bytes(rng.randbytes(big))
    (root / "adapter_config.json").write_text(f'{{"r": 8, "seed": {seed}}}')
    for i in range(small):
        (root / "extra" / f"part-{i:02d}.txt").parent.mkdir(exist_ok=True)
        (root / "extra" / f"part-{i:02d}.txt").write_bytes(rng.randbytes(1000 + i))
    return root


def register(arts: Artifacts, folder: Path, version: str = "v1", name: str = "chat-adapter") -> Manifest:
    lineage = {"base_model": {"id": "workbench-demo/tiny-llama", "revision": "abc123"}, "job_id": "job-1"}
    return arts.local.register("adapter", name, version, folder, lineage=lineage, actor=arts.actor)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file's bytes under `folder`, the artifact's own manifest left out."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != "manifest.json"
    }


def test_round_trip_is_byte_for_byte(tmp_path: Path, open_remote: Callable[[], Storage]) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    manifest = register(alice, adapter_folder(tmp_path / "src"))
    pushed = alice.push(parse_ref("chat-adapter@v1"))
    assert (pushed.files_copied, pushed.bytes_copied) == (len(manifest.files), manifest.size)

    bob = workspace(tmp_path, "bob", open_remote, actor="bob@dev")
    pulled = bob.pull(parse_ref("chat-adapter@v1"))
    assert pulled.files_copied == len(manifest.files)
    got = bob.local.resolve(parse_ref("chat-adapter@v1"))
    assert got.digest() == manifest.digest()
    assert got.lineage["base_model"]["revision"] == "abc123"
    assert got.created_by == "alice@dev"
    assert files_of(bob.folder(got)) == files_of(tmp_path / "src")
    assert [v.manifest.ref for v in bob.remote.versions()] == ["chat-adapter@v1"]


def test_repush_and_repull_move_nothing(tmp_path: Path, open_remote: Callable[[], Storage]) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    register(alice, adapter_folder(tmp_path / "src"))
    alice.push(parse_ref("chat-adapter@v1"))
    again = alice.push(parse_ref("chat-adapter@v1"))
    assert again.already_there and again.files_copied == 0 and again.bytes_copied == 0

    bob = workspace(tmp_path, "bob", open_remote)
    bob.pull(parse_ref("chat-adapter"))
    assert bob.pull(parse_ref("chat-adapter@v1")).already_there


def test_push_killed_halfway_resumes(tmp_path: Path, remote_kind: str) -> None:
    tag = uuid.uuid4().hex[:12]
    open_remote = (lambda: azurite_storage(tag)) if remote_kind == "azurite" else storage_factory("folder", tmp_path)
    data_dir = tmp_path / "alice"
    alice = Artifacts(data_dir, open_remote=open_remote)
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(40):
        (folder / f"shard-{i:02d}.bin").write_bytes(os.urandom(2_000_000))
    manifest = alice.local.register("dataset", "corpus", "v1", folder, lineage={}, actor="alice@dev")

    env = os.environ | remote_env(remote_kind, tmp_path, tag)
    env |= {"WORKBENCH_WORKSPACE__DATA_DIR": str(data_dir), "WORKBENCH_ARTIFACTS__WORKERS": "1"}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    push = subprocess.Popen(
        [sys.executable, "-m", "workbench", "artifacts", "push", "corpus@v1", "--quiet"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    remote = open_remote()
    deadline = time.monotonic() + 60
    while len(remote.keys("dataset/corpus/v1")) < 5 and push.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    push.send_signal(signal.SIGKILL)
    push.wait(timeout=10)
    assert push.returncode == -signal.SIGKILL, "the push finished before it could be killed"
    assert remote.read("dataset/corpus/v1/manifest.json") is None  # readers see nothing yet
    assert [v.manifest.ref for v in alice.remote.versions()] == []

    resumed = alice.push(parse_ref("corpus@v1"))
    assert resumed.files_skipped >= 4 and resumed.files_copied <= 36
    assert resumed.files_copied + resumed.files_skipped == 40
    bob = workspace(tmp_path, "bob", open_remote)
    assert bob.pull(parse_ref("corpus@v1")).files_copied == 40
    assert bob.local.resolve(parse_ref("corpus@v1")).digest() == manifest.digest()


def where_stored(remote: Storage, manifest: Manifest, path: str) -> tuple[str, int]:
    """The key holding the version's file `path` and the offset of its first byte there (in a pack or alone)."""
    prefix = f"{manifest.kind}/{manifest.name}/{manifest.version}"
    for pack in read_index(remote.read(f"{prefix}/{INDEX}"), manifest, prefix, origin="test"):
        for member, offset in pack.offsets():
            if member.path == path:
                return pack.key, offset
    return f"{prefix}/{path}", 0


@pytest.mark.parametrize("path", ["extra/part-03.txt", "adapter_model.safetensors"], ids=["packed", "alone"])
def test_corrupted_blob_is_detected_on_pull(tmp_path: Path, open_remote: Callable[[], Storage], path: str) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    manifest = register(alice, adapter_folder(tmp_path / "src"))
    alice.push(parse_ref("chat-adapter@v1"))
    remote = open_remote()
    key, offset = where_stored(remote, manifest, path)
    assert key.endswith(path) == (path == "adapter_model.safetensors")  # small files travel in a pack
    original = remote.read(key)
    assert original is not None
    remote.write(key, original[:offset] + b"X" + original[offset + 1 :])  # same size, one byte changed

    bob = workspace(tmp_path, "bob", open_remote)
    with pytest.raises(IntegrityError, match=re.escape(path)):
        bob.pull(parse_ref("chat-adapter@v1"))
    assert bob.local.versions() == []  # nothing half-pulled is visible
    assert not list((tmp_path / "bob").rglob(".partial-*"))


def test_small_files_travel_in_packs_and_a_push_resumes_by_pack(
    tmp_path: Path, open_remote: Callable[[], Storage]
) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):  # 36 MB of files under PACK_FILE_MAX: three packs
        (src / f"shard-{i:02d}.json").write_bytes(os.urandom(900_000))
    manifest = alice.local.register("dataset", "shards", "v1", src, lineage={}, actor="alice@dev")
    alice.push(parse_ref("shards@v1"))
    remote, prefix = open_remote(), "dataset/shards/v1"
    packs = read_index(remote.read(f"{prefix}/{INDEX}"), manifest, prefix, origin="test")
    assert [len(p.members) for p in packs] == [18, 18, 4]
    assert remote.keys(prefix) == sorted([*(p.key for p in packs), f"{prefix}/{INDEX}", f"{prefix}/manifest.json"])

    for key in (f"{prefix}/manifest.json", f"{prefix}/{INDEX}", packs[1].key):  # as if the push had died there
        remote.delete(key)
    resumed = alice.push(parse_ref("shards@v1"))
    assert (resumed.files_copied, resumed.bytes_copied) == (18, packs[1].size)

    bob = LocalFolderStorage(tmp_path / "bob")  # a pull that died before its last file: only that one comes again
    lost = packs[1].members[3]
    for entry in manifest.files:
        if entry != lost:
            copy_file(src / entry.path, bob.path(f"{prefix}/{entry.path}"))
    pulled = sync.pull(manifest, remote=remote, workspace=bob)
    assert (pulled.files_copied, pulled.bytes_copied) == (1, lost.size)
    assert files_of(bob.path(prefix)) == files_of(src)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda index: b"{not json",
        lambda index: index.replace(b'"format": 1', b'"format": 9'),
        lambda index: index.replace(b"part-00.txt", b"part-99.txt"),  # a file the manifest does not list
        lambda index: index.replace(b"part-00.txt", b"part-01.txt"),  # listed twice, and not its pack's listing
        lambda index: index.replace(b'"id": "', b'"id": "0'),
    ],
    ids=["not-json", "format", "unknown-file", "twice", "wrong-id"],
)
def test_a_tampered_pack_index_is_refused_on_pull(
    tmp_path: Path, open_remote: Callable[[], Storage], tamper: Callable[[bytes], bytes]
) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    register(alice, adapter_folder(tmp_path / "src"))
    alice.push(parse_ref("chat-adapter@v1"))
    remote, key = open_remote(), f"adapter/chat-adapter/v1/{INDEX}"
    index = remote.read(key)
    assert index is not None
    remote.write(key, tamper(index))

    bob = workspace(tmp_path, "bob", open_remote)
    with pytest.raises(IntegrityError, match=r"chat-adapter@v1: .*refused"):
        bob.pull(parse_ref("chat-adapter@v1"))
    assert bob.local.versions() == []


def test_a_folder_holding_the_storage_s_own_names_is_not_registered(tmp_path: Path) -> None:
    arts = workspace(tmp_path, "alice", storage_factory("folder", tmp_path))
    for name in (".packs/index.json", ".push-lock"):
        folder = adapter_folder(tmp_path / f"src-{name[1:5]}")
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text("{}")
        with pytest.raises(UsageError, match=re.escape(name)):
            register(arts, folder)


def test_concurrent_pushes_of_one_version_one_wins(tmp_path: Path, open_remote: Callable[[], Storage]) -> None:
    pushers = [workspace(tmp_path, who, open_remote, actor=f"{who}@dev") for who in ("alice", "bob")]
    manifests = [register(p, adapter_folder(tmp_path / f"src-{i}", seed=i)) for i, p in enumerate(pushers)]
    start = threading.Barrier(2)
    outcomes: dict[int, BaseException | None] = {}

    def run(i: int) -> None:
        start.wait()
        try:
            pushers[i].push(parse_ref("chat-adapter@v1"))
            outcomes[i] = None
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    winners = [i for i, exc in outcomes.items() if exc is None]
    losers = [exc for exc in outcomes.values() if exc is not None]
    assert len(winners) == 1 and len(losers) == 1
    assert isinstance(losers[0], VersionConflictError)
    assert "chat-adapter@v1" in losers[0].message

    reader = workspace(tmp_path, "carol", open_remote)
    reader.pull(parse_ref("chat-adapter@v1"))
    assert reader.local.resolve(parse_ref("chat-adapter@v1")).digest() == manifests[winners[0]].digest()
    # the loser trying again later is refused too, and the published version is untouched
    with pytest.raises(VersionConflictError, match="already published"):
        pushers[1 - winners[0]].push(parse_ref("chat-adapter@v1"))


def test_label_moves_are_audited_and_undone(tmp_path: Path, open_remote: Callable[[], Storage]) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    v1 = register(alice, adapter_folder(tmp_path / "a", seed=1), "v1")
    v2 = register(alice, adapter_folder(tmp_path / "b", seed=2), "v2")
    for ref in ("chat-adapter@v1", "chat-adapter@v2"):
        alice.push(parse_ref(ref))
    remote = alice.remote
    assert remote.set_label(v1, "staging", actor="alice@dev") is None
    assert remote.set_label(v2, "staging", actor="alice@dev") == "v1"
    assert remote.resolve(parse_ref("chat-adapter:staging")).version == "v2"

    log = alice.store.audit_log(subject="artifact:chat-adapter")
    moves = [(e.action, e.details["version"], e.details["previous"]) for e in log if e.action == "label.set"]
    assert moves == [("label.set", "v2", "v1"), ("label.set", "v1", None)]
    assert all(e.actor == "alice@dev" and e.details["where"] == "remote" for e in log if e.action == "label.set")

    assert remote.undo_label("chat-adapter", "staging", actor="alice@dev") == "v1"
    assert remote.resolve(parse_ref("chat-adapter:staging")).version == "v1"
    bob = workspace(tmp_path, "bob", open_remote)
    assert bob.pull(parse_ref("chat-adapter:staging")).ref == "chat-adapter@v1"


def test_delete_refused_while_labelled_or_live(tmp_path: Path, open_remote: Callable[[], Storage]) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    v1 = register(alice, adapter_folder(tmp_path / "a", seed=1), "v1")
    v2 = register(alice, adapter_folder(tmp_path / "b", seed=2), "v2")
    alice.push(parse_ref("chat-adapter@v1"))
    alice.remote.set_label(v1, "prod", actor="alice@dev")
    with pytest.raises(ArtifactInUseError, match="labelled prod"):
        alice.remote.remove(v1, actor="alice@dev")

    _live_release(alice.store, "chat-adapter", "v2")
    with pytest.raises(ArtifactInUseError, match="live release"):
        alice.local.remove(v2, actor="alice@dev")

    alice.local.remove(v1, actor="alice@dev")
    assert [v.manifest.version for v in alice.local.versions()] == ["v2"]
    assert not (tmp_path / "alice" / "artifacts" / "adapter" / "chat-adapter" / "v1").exists()
    assert [v.manifest.version for v in alice.remote.versions()] == ["v1"]  # the remote copy stays


def _live_release(store: Store, name: str, version: str) -> None:
    import json

    with store.transaction() as db:
        db.execute(
            "INSERT INTO releases (id, app, target, version, status, bom, created_by, created_at)"
            " VALUES ('r1', 'chatbot', 'prod', '1.0', 'live', ?, 'alice', '2026-12-01')",
            (json.dumps({"artifacts": [{"name": name, "version": version}]}),),
        )


def test_registering_other_files_under_a_taken_version_is_refused(
    tmp_path: Path, open_remote: Callable[[], Storage]
) -> None:
    alice = workspace(tmp_path, "alice", open_remote)
    first = register(alice, adapter_folder(tmp_path / "a", seed=1))
    assert register(alice, tmp_path / "a") == first  # same files: the same version
    with pytest.raises(VersionConflictError):
        register(alice, adapter_folder(tmp_path / "b", seed=2))


def test_wrong_key_is_refused_without_showing_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    canary = "Q0FOQVJZLXNlY3JldC1rZXktbmV2ZXItcHJpbnQtbWU="  # base64 of a canary string
    caplog.set_level(logging.DEBUG)
    arts = Artifacts(tmp_path / "ws", open_remote=lambda: azurite_storage(key=canary))
    register(arts, adapter_folder(tmp_path / "src"))
    with pytest.raises((AccessDeniedError, CredentialsError)) as caught:
        arts.push(parse_ref("chat-adapter@v1"))
    assert canary not in str(caught.value) and canary not in (caught.value.hint or "")
    assert canary not in caplog.text


BLOCK = 64 * 1024
"""A block size small enough that a test file of a few hundred KB goes up (and comes down) in blocks."""


def test_large_files_move_in_blocks_committed_with_their_hash(tmp_path: Path) -> None:
    from azure.storage.blob import BlobServiceClient

    from tests.integration.artifact_support import connection_string, containers

    tag = uuid.uuid4().hex[:12]
    alice = workspace(tmp_path, "alice", lambda: azurite_storage(tag, block_bytes=BLOCK))
    manifest = register(alice, adapter_folder(tmp_path / "src", big=PACK_FILE_MAX + 5 * BLOCK + 123))
    alice.push(parse_ref("chat-adapter@v1"))

    weights = next(f for f in manifest.files if f.path == "adapter_model.safetensors")
    service = BlobServiceClient.from_connection_string(connection_string())
    blob = service.get_blob_client(containers(tag)["adapter"], "adapter/chat-adapter/v1/adapter_model.safetensors")
    committed, uncommitted = blob.get_block_list("all")
    assert (len(committed), len(uncommitted)) == (-(-weights.size // BLOCK), 0)
    assert blob.get_blob_properties().metadata == {"sha256": weights.sha256}

    bob = workspace(tmp_path, "bob", lambda: azurite_storage(tag, block_bytes=BLOCK))  # ranged GETs of BLOCK
    assert bob.pull(parse_ref("chat-adapter@v1")).bytes_copied == manifest.size
    assert files_of(bob.folder(manifest)) == files_of(tmp_path / "src")


def test_a_netrc_login_for_the_storage_host_is_never_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests, left to read the environment on every request, would replace the SDK's signed
    Authorization header with a ~/.netrc login for the same host."""
    from urllib.parse import urlsplit

    from tests.integration.artifact_support import azurite_url

    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {urlsplit(azurite_url()).hostname} login mallory password not-the-key\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    tag = uuid.uuid4().hex[:12]
    alice = workspace(tmp_path, "alice", lambda: azurite_storage(tag))
    manifest = register(alice, adapter_folder(tmp_path / "src", big=10_000, small=2))
    assert alice.push(parse_ref("chat-adapter@v1")).files_copied == len(manifest.files)
    bob = workspace(tmp_path, "bob", lambda: azurite_storage(tag))
    assert bob.pull(parse_ref("chat-adapter@v1")).files_copied == len(manifest.files)
