"""Sentence-transformers models on onnxruntime: the same model, the same vectors, a faster runtime.

The whole model (transformer, pooling, normalisation) is exported once with torch's TorchScript
exporter (`dynamo=False`: needs the `onnx` package, not `onnxscript`) and eager attention, then
fused with onnxruntime's transformer optimizer when it recognises the graph. The export lives
beside the HF cache (`<cache>-onnx/<model>/<key>/`), keyed by the model's revision and the export
settings, with the tokenizer it was traced with and a manifest naming both files' sha256. It is
built in a temporary folder and renamed into place whole, so a killed export leaves nothing that
is used. Loading checks the manifest and the hashes: a damaged export raises ExportError.

Queries and ingest run it with `tokenizers` and onnxruntime alone (no torch import): one
single-threaded session shared by a worker thread per CPU, a few texts of similar length per run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import numpy as np

EXPORT_FORMAT = 1
"""Bumped when the export's contents change; part of the cache key."""
OPSET = 17
SETTINGS: dict[str, object] = {
    "format": EXPORT_FORMAT,
    "exporter": "torchscript",
    "opset": OPSET,
    "attention": "eager",
    "fused": True,
}
MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE = "model.onnx", "tokenizer.json", "export.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MIN_COSINE = 0.9999
STALE_S = 3600
"""A staging folder untouched this long was left by a killed export."""
RUN_SIZE = 4
"""Texts per onnxruntime run: measured on 2 cores, 1 to 8 texts per single-threaded run did 1.5x less
CPU work than torch's 64-text batches on both cores; fewer per run amortise less Python per run."""
"""The export must reproduce the torch vectors of the check texts at least this closely."""
CHECK_TEXTS = (
    "an example",
    "A second, longer example: with punctuation, Numbers 12345 and UPPER case.",
    "long " * 600,
)

log = logging.getLogger(__name__)


class ExportError(Exception):
    """The ONNX export cannot be made, or a cached one cannot be used."""


@dataclass(frozen=True)
class Export:
    """A usable export: its folder, identity and the figures the embedder needs."""

    folder: Path
    identity: str
    dimension: int
    max_tokens: int
    inputs: tuple[str, ...]
    pad_id: int
    pad_token: str


def export_folder(model_id: str, path: Path, cache_dir: Path) -> Path:
    """Where the export of the model in `path` (for `model_id`) lives beside the HF cache `cache_dir`."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "--", model_id).strip("-.") or "model"
    key = hashlib.sha256(json.dumps([revision(path), SETTINGS], sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir.parent / f"{cache_dir.name}-onnx" / name / key


def revision(path: Path) -> str:
    """The model's revision: the HF snapshot commit, else the names, sizes and times of its files."""
    if path.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", path.name):
        return path.name
    files = sorted(p for p in path.rglob("*") if p.is_file())
    stats = [(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


def load_export(model_id: str, path: Path, cache_dir: Path) -> Export:
    """The cached export of the model, made first when missing; ExportError when a cached one is
    damaged (call `discard` and try again) or none can be made."""
    folder = export_folder(model_id, path, cache_dir)
    if not folder.is_dir():
        build_export(model_id, path, folder)
    return read_export(folder)


def discard(folder: Path) -> None:
    """Remove an export folder (a damaged one), so the next `load_export` builds it again."""
    aside = folder.with_name(f".{folder.name}.discarded-{os.getpid()}")
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def read_export(folder: Path) -> Export:
    """The export in `folder` after checking its manifest and file hashes; ExportError otherwise."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        for name in (MODEL_FILE, TOKENIZER_FILE):
            if _sha256(folder / name) != manifest["sha256"][name]:
                raise ExportError(f"{folder / name} does not match its recorded sha256")
        return _from_manifest(folder, manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"the export in {folder} cannot be read: {exc}") from None


def _from_manifest(folder: Path, manifest: dict[str, Any]) -> Export:
    return Export(
        folder=folder,
        identity=str(manifest["identity"]),
        dimension=int(manifest["dimension"]),
        max_tokens=int(manifest["max_tokens"]),
        inputs=tuple(str(name) for name in manifest["inputs"]),
        pad_id=int(manifest["pad_id"]),
        pad_token=str(manifest["pad_token"]),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def build_export(model_id: str, path: Path, folder: Path) -> None:
    """Export the model into a temporary folder beside `folder`, then rename it into place whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(folder)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.building-"))
    try:
        manifest = _export_into(model_id, path, staging)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        _fsync_files(staging)
        try:
            staging.rename(folder)
        except OSError:
            if not folder.is_dir():  # another process renamed its export in first: use that one
                raise
    except ExportError:
        raise
    except Exception as exc:  # the exporter fails in many ways (missing onnx, untraceable modules)
        raise ExportError(f"exporting {model_id} to ONNX failed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_staging(folder: Path) -> None:
    """Remove what killed exports left (staging folders untouched for STALE_S); a live one is younger."""
    for left in folder.parent.glob(f".{folder.name}.building-*"):
        with contextlib.suppress(OSError):
            if time.time() - left.stat().st_mtime > STALE_S:
                shutil.rmtree(left, ignore_errors=True)


def _fsync_files(folder: Path) -> None:
    for item in folder.iterdir():
        with item.open("rb") as handle:
            os.fsync(handle.fileno())


def _export_into(model_id: str, path: Path, staging: Path) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = SentenceTransformer(
        str(path), device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
    )
    tokenizer = model.tokenizer
    sample = tokenizer(["an example", "a second, longer example"], padding=True, return_tensors="pt")
    inputs = tuple(name for name in INPUTS if name in sample)
    wrapper = _traceable(model, inputs).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # tracing notes (shape checks taken as constants, index ops) that the vector check below covers
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(sample[name] for name in inputs),
            str(staging / MODEL_FILE),
            dynamo=False,
            input_names=list(inputs),
            output_names=["sentence_embedding"],
            dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in inputs}, "sentence_embedding": {0: "batch"}},
            opset_version=OPSET,
        )
    _fuse(staging / MODEL_FILE, model)
    tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
    manifest = _manifest(model_id, path, model, inputs, staging)
    _check_vectors(model, OnnxModel(_from_manifest(staging, manifest), source=path))
    return manifest


def _check_vectors(model: Any, exported: OnnxModel) -> None:
    """ExportError unless the export reproduces the torch vectors of CHECK_TEXTS."""
    import numpy as np

    ours = exported.encode(CHECK_TEXTS)
    theirs = np.asarray(model.encode(list(CHECK_TEXTS), convert_to_numpy=True), dtype=np.float32)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    if ours.shape != theirs.shape or float(cosine.min()) < MIN_COSINE:
        raise ExportError(f"the ONNX export's vectors differ from torch's (minimum cosine {cosine.min():.5f})")


def _traceable(model: Any, inputs: tuple[str, ...]) -> Any:
    """The sentence-transformers pipeline as a module taking positional tensors (what the exporter traces)."""
    import torch

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(dict(zip(inputs, tensors, strict=True)))["sentence_embedding"]

    return Whole()


def _fuse(model_file: Path, model: Any) -> None:
    """Fuse attention, layer norms and GELU with onnxruntime's transformer optimizer (BERT-like
    models); the unfused graph stays when the optimizer does not know the model or fails."""
    config: Any = getattr(getattr(model[0], "auto_model", None), "config", None)
    if getattr(config, "model_type", "") not in {"bert", "roberta", "xlm-roberta"}:
        return
    try:
        from onnxruntime.transformers import optimizer  # type: ignore[import-untyped]

        optimized = optimizer.optimize_model(
            str(model_file), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
        )
        optimized.save_model_to_file(str(model_file))
    except Exception as exc:  # an optimizer that does not know the graph: the export is still correct
        log.warning("ONNX export: the transformer optimizer failed (%s); keeping the unfused graph", exc)


def _manifest(model_id: str, path: Path, model: Any, inputs: tuple[str, ...], staging: Path) -> dict[str, Any]:
    tokenizer = model.tokenizer
    dimension_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    rev = revision(path)
    return {
        "identity": f"{model_id}@{rev[:12]} onnx (torchscript opset {OPSET}, format {EXPORT_FORMAT})",
        "model_id": model_id,
        "revision": rev,
        "settings": SETTINGS,
        "dimension": int(dimension_of() or 0),
        "max_tokens": int(model.max_seq_length or tokenizer.model_max_length),
        "inputs": list(inputs),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "sha256": {name: _sha256(staging / name) for name in (MODEL_FILE, TOKENIZER_FILE)},
    }


class OnnxModel:
    """The exported model in onnxruntime, with `encode` shaped like sentence-transformers'.

    One single-threaded session serves one worker thread per CPU, each running a few texts of
    similar length at a time: on CPUs this does less work than one batch spread over every core
    (no padding, small attention matrices, no barrier between cores), and a busy core delays only
    its own run.
    """

    device = "cpu"

    def __init__(self, export: Export, *, source: Path, workers: int | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        self.export, self._source = export, source
        self._hf_tokenizer: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self.workers = workers or len(os.sched_getaffinity(0))
        self._tokens = Tokenizer.from_file(str(export.folder / TOKENIZER_FILE))
        self._tokens.enable_truncation(export.max_tokens)
        self._tokens.no_padding()  # each run pads to its own longest text
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(export.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own (Fail, InvalidProtobuf, ...)
            raise ExportError(f"onnxruntime cannot load {export.folder / MODEL_FILE}: {exc}") from None

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (what the splitter counts tokens with), loaded on first use."""
        if self._hf_tokenizer is None:
            from transformers import AutoTokenizer

            self._hf_tokenizer = AutoTokenizer.from_pretrained(str(self._source), local_files_only=True)
        return self._hf_tokenizer

    def encode(self, texts: Sequence[str], *, batch_size: int = RUN_SIZE, **_: Any) -> np.ndarray:
        """Embeddings of `texts` (float32, one row each), longest first, at most `batch_size`
        (and RUN_SIZE) texts per run, the runs spread over the worker threads."""
        import numpy as np

        encoded = self._tokens.encode_batch(list(texts))
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))
        size = max(1, min(batch_size, RUN_SIZE))
        runs = [order[start : start + size] for start in range(0, len(order), size)]
        vectors = np.zeros((len(encoded), self.export.dimension), dtype=np.float32)
        for run, result in zip(runs, self._map(lambda run: self._run([encoded[i] for i in run]), runs), strict=True):
            vectors[run] = result
        return vectors

    def _map(self, fn: Callable[[list[int]], np.ndarray], runs: list[list[int]]) -> Iterable[np.ndarray]:
        if len(runs) < 2 or self.workers < 2:
            return map(fn, runs)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx-embed")
        return self._pool.map(fn, runs)

    def _run(self, encoded: list[Any]) -> np.ndarray:
        import numpy as np

        width = max(len(e.ids) for e in encoded)
        feed = {name: np.zeros((len(encoded), width), dtype=np.int64) for name in self.export.inputs}
        feed["input_ids"][:] = self.export.pad_id
        for row, item in enumerate(encoded):
            n = len(item.ids)
            feed["input_ids"][row, :n] = item.ids
            if "attention_mask" in feed:
                feed["attention_mask"][row, :n] = item.attention_mask
            if "token_type_ids" in feed:
                feed["token_type_ids"][row, :n] = item.type_ids
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)
