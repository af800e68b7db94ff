"""The folder storage hashes what it copies: an upload whose source changed is refused before it lands."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.artifacts.storage import LocalFolderStorage, SourceChangedError


def test_upload_refuses_a_source_that_no_longer_hashes_as_registered(tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"registered bytes")
    registered = hashlib.sha256(b"registered bytes").hexdigest()
    source.write_bytes(b"rewritten bytes!")  # same size, other content
    storage = LocalFolderStorage(tmp_path / "remote")

    with pytest.raises(SourceChangedError, match=r"weights\.bin"):
        storage.upload("adapter/a/v1/weights.bin", source, sha256=registered, on_bytes=lambda n: None)
    assert storage.keys("adapter/a/v1") == []
    assert not list((tmp_path / "remote").rglob(".partial-*"))


def test_upload_and_download_report_what_they_copied(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # more than one copy chunk
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    storage = LocalFolderStorage(tmp_path / "remote")
    sent: list[int] = []

    storage.upload("dataset/d/v1/data.bin", source, sha256=digest, on_bytes=sent.append)
    assert sum(sent) == len(data)
    assert storage.download("dataset/d/v1/data.bin", tmp_path / "copy.bin", on_bytes=lambda n: None) == digest
    assert (tmp_path / "copy.bin").read_bytes() == data
