"""Atomic writes: a crash at any point leaves the old file or the new one, never part of one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.artifacts.storage import LocalFolderStorage
from services.files import replace_files, write_atomic


def test_write_atomic_replaces_and_syncs_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")
    target.chmod(0o640)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(target, '{"new": true}')
    assert target.read_text() == '{"new": true}'
    assert len(synced) == 2  # the file's bytes, then the folder's entry
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("fault", ["fsync", "replace"])
def test_a_failure_before_the_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    target = tmp_path / "manifest.json"
    target.write_text('{"old": true}')

    def fail(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, fault, fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b'{"new": true}' * 1000)
    monkeypatch.undo()
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary file left behind


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text('{"old": true}')
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from services.files import write_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # killed by the kernel at the limit, mid-write\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "write_atomic(Path(sys.argv[1]), b'x' * 100_000)\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(target)], check=False, capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGXFSZ
    assert target.read_text() == '{"old": true}'


def test_replace_files_never_writes_into_an_old_inode(tmp_path: Path) -> None:
    staging, target = tmp_path / "staging", tmp_path / "out"
    (staging / "sub").mkdir(parents=True)
    target.mkdir()
    (target / "config.json").write_text("old")
    os.link(target / "config.json", tmp_path / "registered-copy")  # as the artifact store links it
    (target / "keep.txt").write_text("mine")
    (staging / "config.json").write_text("new")
    (staging / "sub" / "a.bin").write_bytes(b"a")

    replace_files(staging, target)
    assert (target / "config.json").read_text() == "new"
    assert (tmp_path / "registered-copy").read_text() == "old"
    assert (target / "sub" / "a.bin").read_bytes() == b"a" and (target / "keep.txt").read_text() == "mine"
    assert not staging.exists()


@pytest.mark.parametrize("verb", ["write", "create"])
def test_folder_storage_puts_nothing_in_place_before_it_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    storage = LocalFolderStorage(tmp_path / "remote")
    storage.write("adapter/a/labels/prod", b'{"version": "1"}')
    key = "adapter/a/labels/prod" if verb == "write" else "adapter/a/1/manifest.json"

    def fail(*_: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)  # the disk fails before the bytes are durable
    with pytest.raises(OSError):
        getattr(storage, verb)(key, b'{"version": "2"}')
    monkeypatch.undo()
    assert storage.read("adapter/a/labels/prod") == b'{"version": "1"}'
    assert storage.read("adapter/a/1/manifest.json") is None
    assert [p.name for p in (tmp_path / "remote").rglob("*") if p.is_file()] == ["prod"]
