"""Artifact references, manifests and the folder storage's atomic create, without a network."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from services.artifacts.model import FileEntry, Manifest, Ref, parse_ref, scan_files
from services.artifacts.storage import LocalFolderStorage
from services.errors import UsageError
from workbench.settings import effective_rows, load_with_layers
from workbench.wiring import remote_storage


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("chat-adapter", Ref("chat-adapter")),
        ("chat-adapter@v3", Ref("chat-adapter", version="v3")),
        ("chat-adapter:prod", Ref("chat-adapter", label="prod")),
        ("demo-run@demo-run-20260301-120000-000000", Ref("demo-run", version="demo-run-20260301-120000-000000")),
    ],
)
def test_refs_parse(text: str, ref: Ref) -> None:
    assert parse_ref(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize("text", ["", "@v1", "name@", "name:", "../etc@v1", "name@v1/../x", "a b", "-x"])
def test_bad_refs_say_how_to_write_one(text: str) -> None:
    with pytest.raises(UsageError, match="NAME@VERSION"):
        parse_ref(text)


def test_manifest_round_trips_and_digest_ignores_metadata(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "a.bin").write_bytes(b"\x00" * 10)
    (tmp_path / "manifest.json").write_text("{}")  # a version's own manifest is never one of its files
    files = scan_files(tmp_path)
    assert [f.path for f in files] == ["a.bin", "sub/b.txt"]
    manifest = Manifest("dataset", "docs", "v1", files, {"source": "x"}, "alice@dev", "2026-12-01T00:00:00+00:00")
    again = Manifest.from_json(manifest.to_json(), origin="test")
    assert again == manifest
    assert again.size == 11
    other = Manifest("dataset", "docs", "v1", files, {}, "bob@dev", "2026-12-02T00:00:00+00:00")
    assert other.digest() == manifest.digest()
    changed = Manifest("dataset", "docs", "v1", (*files[:1], FileEntry("sub/b.txt", "0" * 64, 1)))
    assert changed.digest() != manifest.digest()


def test_malformed_manifest_names_where_it_came_from() -> None:
    with pytest.raises(UsageError, match=r"remote: docs@v1: not a valid artifact manifest"):
        Manifest.from_json(b'{"kind": "dataset"}', origin="remote: docs@v1")


def test_folder_create_is_atomic_and_exclusive(tmp_path: Path) -> None:
    storage = LocalFolderStorage(tmp_path)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        barrier.wait()
        results.append(storage.create("dataset/docs/v1/manifest.json", f"writer {i}".encode()))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert storage.read(
        "dataset/docs/v1/manifest.json",
    ).startswith(b"writer ")  # type: ignore[union-attr]
    assert storage.keys("dataset/docs") == ["dataset/docs/v1/manifest.json"]


def test_folder_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        LocalFolderStorage(tmp_path).read("dataset/../../etc/passwd")


def test_remote_follows_settings_and_the_connection_string_stays_secret(tmp_path: Path) -> None:
    canary = "AccountKey=CANARY-artifacts-key-7f3a"
    environ = {
        "WORKBENCH_ARTIFACTS__CONNECTION_STRING": f"DefaultEndpointsProtocol=http;AccountName=dev;{canary};"
        "BlobEndpoint=http://127.0.0.1:1/dev;",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    settings, layers = load_with_layers(project_file=None, user_file=tmp_path / "none.toml", environ=environ)
    assert canary not in repr(settings) and canary not in str(effective_rows(settings, layers))
    assert remote_storage(settings.artifacts).description == "Azure Blob Storage http://127.0.0.1:1/dev"

    folder = {"WORKBENCH_ARTIFACTS__REMOTE_DIR": str(tmp_path / "shared")}
    settings = load_with_layers(project_file=None, user_file=tmp_path / "none.toml", environ=folder)[0]
    assert remote_storage(settings.artifacts).description == f"folder {tmp_path / 'shared'}"  # type: ignore[union-attr]
    assert (
        remote_storage(load_with_layers(project_file=None, user_file=tmp_path / "x", environ={})[0].artifacts) is None
    )
