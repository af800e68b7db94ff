"""Where the ONNX export is cached and when a cached one is refused (real files, no model needed)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from services.rag import onnx_runtime
from services.rag.onnx_runtime import ExportError, discard, export_folder, read_export, revision

COMMIT = "a" * 40


def snapshot(cache: Path, commit: str = COMMIT) -> Path:
    folder = cache / "models--org--model" / "snapshots" / commit
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def fake_export(folder: Path) -> Path:
    """An export folder with a valid manifest over small stand-in files."""
    folder.mkdir(parents=True)
    files = {"model.onnx": b"graph", "tokenizer.json": b"{}"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {
        "identity": "org/model@aaaa onnx",
        "dimension": 384,
        "max_tokens": 256,
        "inputs": ["input_ids", "attention_mask"],
        "pad_id": 0,
        "pad_token": "[PAD]",
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    (folder / "export.json").write_text(json.dumps(manifest))
    return folder


def test_the_export_lives_beside_the_hf_cache_keyed_by_revision(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    first, second = snapshot(cache), snapshot(cache, "b" * 40)
    folder = export_folder("org/model", first, cache)
    assert folder.parent == tmp_path / "hub-onnx" / "org--model"
    assert export_folder("org/model", second, cache) != folder
    assert revision(first) == COMMIT


def test_export_settings_are_part_of_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = snapshot(tmp_path / "hub")
    before = export_folder("org/model", model, tmp_path / "hub")
    monkeypatch.setattr(onnx_runtime, "SETTINGS", {**onnx_runtime.SETTINGS, "opset": 18})
    assert export_folder("org/model", model, tmp_path / "hub") != before


def test_a_plain_folder_changes_revision_when_its_files_change(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"weights")
    before = revision(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"other weights")
    assert revision(tmp_path / "model") != before


def test_a_model_id_cannot_leave_the_export_cache(tmp_path: Path) -> None:
    folder = export_folder("../../etc/evil", snapshot(tmp_path / "hub"), tmp_path / "hub")
    assert folder.resolve().is_relative_to((tmp_path / "hub-onnx").resolve())


def test_a_valid_export_is_read(tmp_path: Path) -> None:
    export = read_export(fake_export(tmp_path / "export"))
    assert (export.dimension, export.max_tokens, export.inputs) == (384, 256, ("input_ids", "attention_mask"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "tokenizer.json").write_text('{"changed": 1}'), "tokenizer.json does not match"),
        (lambda f: (f / "model.onnx").unlink(), "cannot be read"),
        (lambda f: (f / "export.json").write_text("{not json"), "cannot be read"),
        (lambda f: (f / "export.json").write_text("{}"), "cannot be read"),
    ],
    ids=["changed-tokenizer", "missing-model", "manifest-not-json", "manifest-empty"],
)
def test_a_damaged_export_is_refused(tmp_path: Path, damage: object, message: str) -> None:
    folder = fake_export(tmp_path / "export")
    damage(folder)  # type: ignore[operator]
    with pytest.raises(ExportError, match=message):
        read_export(folder)


def test_discard_removes_the_whole_folder(tmp_path: Path) -> None:
    folder = fake_export(tmp_path / "export")
    discard(folder)
    discard(folder)  # already gone: nothing to do
    assert list(tmp_path.iterdir()) == []


def test_what_a_killed_export_left_is_removed_once_stale(tmp_path: Path) -> None:
    folder = tmp_path / "hub-onnx" / "org--model" / "0123456789abcdef"
    stale, live = (folder.parent / f".{folder.name}.building-{n}" for n in ("old", "new"))
    for left in (stale, live):
        left.mkdir(parents=True)
        (left / "model.onnx").write_bytes(b"half a graph")
    os.utime(stale, (time.time() - onnx_runtime.STALE_S - 60,) * 2)
    onnx_runtime._remove_stale_staging(folder)
    assert (stale.exists(), live.exists()) == (False, True)
