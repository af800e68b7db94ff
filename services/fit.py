"""Will this model fit? Memory estimates for inference and LoRA/QLoRA training.

All figures are bytes. P is the parameter count, E the embedding parameters (vocab × hidden,
twice when the output head is untied), L layers, h hidden size, i MLP size, kv the key/value
width (kv_heads × head_dim), s the sequence length, b the micro-batch, V the vocabulary, r the
LoRA rank.

    weights      bf16: 2·P     8-bit: 1·(P − E) + 2·E     4-bit NF4: 0.516·(P − E) + 2·E
                 (NF4 stores 4 bits plus 0.127 bits of double-quantised block constants per
                 weight; bitsandbytes keeps embeddings and the output head in bf16)
    kv cache     2 · L · kv · s · b · 2                           (K and V in bf16)
    inference    weights + kv cache + 4·b·s·h·2 (transient hidden states) + b·V·4 (logits)
    adapter      A = r · L · (9h + 2kv + 3i)   LoRA on q,k,v,o,gate,up,down of each layer
    optimiser    16·A  (fp32 adapter weights 4, gradients 4, AdamW moments 8)
    activations  checkpointing on:  L·b·s·h·2 + b·s·34h      (layer inputs + one layer rebuilt)
                 checkpointing off: L·b·s·34h                (Korthikanti et al. 2022, flash attn)
    logits       b · s · V · 4 · 2                            (fp32 logits and their gradient)
    k-bit cast   QLoRA / 8-bit: 2·(E + (2L + 1)·h)       (prepare_model_for_kbit_training casts the
                 bf16 embeddings, head and norms to fp32: about 2 GB on Llama-3-8B)
    training     weights + optimiser + activations + logits (+ k-bit cast)
    every total  + 0.5 GiB for the CUDA context and allocator slack

A verdict compares a total with the device's memory: "fits" up to 85 %, "tight" up to 100 %,
"does not fit" above. Without a GPU, inference is compared with system RAM and k-bit rows say
they need CUDA. A job's preflight compares with the free memory of the devices it can be given
(`assigned_device`): the N with the most free memory, each holding a whole replica.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from services.gpu import Gpu

GIB = 1024**3
RUNTIME_OVERHEAD = GIB // 2
NF4_BYTES_PER_PARAM = (4 + 0.127) / 8
ACTIVATION_FACTOR = 34
OPTIMISER_BYTES_PER_TRAINABLE = 16
FITS_UP_TO, TIGHT_UP_TO = 0.85, 1.0

Verdict = Literal["fits", "tight", "does not fit", "needs CUDA"]


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a transformer that the estimate needs."""

    params: int
    layers: int
    hidden: int
    intermediate: int
    kv_width: int
    vocab: int
    tied_embeddings: bool = True

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @classmethod
    def from_config(cls, config: dict[str, Any], *, params: int | None = None) -> ModelShape:
        """Read a transformers `config.json`; count parameters from it when `params` is not known."""
        text = config.get("text_config", config)
        hidden = int(text["hidden_size"])
        heads = int(text.get("num_attention_heads", 1))
        head_dim = int(text.get("head_dim") or hidden // heads)
        kv_heads = int(text.get("num_key_value_heads") or heads)
        shape = cls(
            params=params or 0,
            layers=int(text["num_hidden_layers"]),
            hidden=hidden,
            intermediate=int(text.get("intermediate_size") or 4 * hidden),
            kv_width=kv_heads * head_dim,
            vocab=int(text.get("vocab_size", 32000)),
            tied_embeddings=bool(config.get("tie_word_embeddings", True)),
        )
        return shape if params else shape.with_params(shape.counted_params())

    def counted_params(self) -> int:
        """Parameters of a Llama-style decoder with these dimensions."""
        h, i, kv = self.hidden, self.intermediate, self.kv_width
        per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
        return self.embedding_params + self.layers * per_layer + h

    def with_params(self, params: int) -> ModelShape:
        return ModelShape(
            params,
            self.layers,
            self.hidden,
            self.intermediate,
            self.kv_width,
            self.vocab,
            self.tied_embeddings,
        )


@dataclass(frozen=True)
class Workload:
    """What the estimate assumes about the run."""

    seq_len: int = 2048
    batch_size: int = 1
    lora_rank: int = 16
    gradient_checkpointing: bool = True


@dataclass(frozen=True)
class Device:
    """The memory an estimate is compared against."""

    name: str
    memory_bytes: int
    cuda: bool


@dataclass(frozen=True)
class FitRow:
    """One scenario: its memory need and the verdict on the device."""

    scenario: str
    bytes: int
    verdict: Verdict


@dataclass(frozen=True)
class FitEstimate:
    """Every scenario for one model on one device."""

    device: Device
    workload: Workload
    rows: tuple[FitRow, ...]

    def badge(self) -> Verdict:
        """The verdict of the lightest scenario that runs on this device (what a user can do)."""
        order: list[Verdict] = ["fits", "tight", "does not fit", "needs CUDA"]
        return min((row.verdict for row in self.rows), key=order.index)


def weight_bytes(shape: ModelShape, bits: int) -> int:
    """Bytes of the weights at 32, 16, 8 or 4 bits (embeddings stay 16-bit when quantised)."""
    if bits >= 16:
        return bits // 8 * shape.params
    per_param = 1.0 if bits == 8 else NF4_BYTES_PER_PARAM
    quantised = shape.params - shape.embedding_params
    return int(per_param * quantised) + 2 * shape.embedding_params


def kv_cache_bytes(shape: ModelShape, work: Workload) -> int:
    return 2 * shape.layers * shape.kv_width * work.seq_len * work.batch_size * 2


def inference_bytes(shape: ModelShape, work: Workload, bits: int) -> int:
    """Memory to generate with the model at `bits` precision."""
    tokens = work.batch_size * work.seq_len
    transient = 4 * tokens * shape.hidden * 2 + work.batch_size * shape.vocab * 4
    total = weight_bytes(shape, bits) + kv_cache_bytes(shape, work) + transient
    return total + RUNTIME_OVERHEAD


def lora_params(shape: ModelShape, rank: int) -> int:
    """Trainable parameters of LoRA on all attention and MLP projections."""
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_width
    return rank * shape.layers * (9 * h + 2 * kv + 3 * i)


def activation_bytes(shape: ModelShape, work: Workload) -> int:
    tokens = work.batch_size * work.seq_len
    one_layer = tokens * ACTIVATION_FACTOR * shape.hidden
    if work.gradient_checkpointing:
        return shape.layers * tokens * shape.hidden * 2 + one_layer
    return shape.layers * one_layer


def kbit_upcast_bytes(shape: ModelShape) -> int:
    """What `prepare_model_for_kbit_training` adds: the 16-bit embeddings, head and norms cast to fp32."""
    norms = (2 * shape.layers + 1) * shape.hidden
    return 2 * (shape.embedding_params + norms)


def training_bytes(shape: ModelShape, work: Workload, bits: int) -> int:
    """Memory to fine-tune with LoRA (bits=16 or 32), 8-bit LoRA (bits=8) or QLoRA (bits=4)."""
    optimiser = OPTIMISER_BYTES_PER_TRAINABLE * lora_params(shape, work.lora_rank)
    logits = work.batch_size * work.seq_len * shape.vocab * 4 * 2
    needed = weight_bytes(shape, bits) + optimiser + activation_bytes(shape, work) + logits
    upcast = kbit_upcast_bytes(shape) if bits < 16 else 0
    return needed + upcast + RUNTIME_OVERHEAD


def verdict(need: int, device: Device, *, needs_cuda: bool = False) -> Verdict:
    if needs_cuda and not device.cuda:
        return "needs CUDA"
    if need <= FITS_UP_TO * device.memory_bytes:
        return "fits"
    return "tight" if need <= TIGHT_UP_TO * device.memory_bytes else "does not fit"


def estimate(shape: ModelShape, device: Device, work: Workload | None = None) -> FitEstimate:
    """All scenarios for `shape` on `device`."""
    work = work or Workload()
    scenarios = [
        ("inference bf16", inference_bytes(shape, work, 16), False),
        ("inference 8-bit", inference_bytes(shape, work, 8), True),
        ("inference 4-bit", inference_bytes(shape, work, 4), True),
        ("LoRA bf16", training_bytes(shape, work, 16), False),
        ("QLoRA 4-bit", training_bytes(shape, work, 4), True),
    ]
    rows = tuple(FitRow(name, need, verdict(need, device, needs_cuda=k)) for name, need, k in scenarios)
    return FitEstimate(device, work, rows)


def host_device(gpu_name: str | None, gpu_bytes: int | None) -> Device:
    """The first GPU if there is one, else system RAM."""
    if gpu_name and gpu_bytes:
        return Device(gpu_name, gpu_bytes, cuda=True)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return Device("CPU RAM", ram, cuda=False)


def assigned_device(gpus: list[Gpu], count: int) -> Device:
    """The device a job that gets `count` of `gpus` is checked against: the `count` with the most free
    memory; every rank holds a whole replica, so the least free of them is the limit."""
    from services.gpu import most_free

    chosen = most_free(gpus, count)
    if not chosen:
        return host_device(None, None)
    names = sorted({g.name for g in chosen})
    label = f"{len(chosen)}× {names[0]}" if len(chosen) > 1 and len(names) == 1 else " + ".join(names)
    ids = ", ".join(g.uuid if g.mig else str(g.index) for g in chosen)
    return Device(f"{label} · GPU {ids} free", min(g.free_bytes for g in chosen), cuda=True)


def shape_or_none(config: dict[str, Any] | None, params: int | None) -> ModelShape | None:
    """The shape of a model from its config, or None when the config lacks transformer dimensions."""
    if not config:
        return None
    try:
        return ModelShape.from_config(config, params=params)
    except (KeyError, TypeError, ValueError):
        return None


def estimate_on_host(
    config: dict[str, Any] | None,
    params: int | None,
    work: Workload | None = None,
    *,
    gpus: list[Gpu] | None = None,
) -> FitEstimate | None:
    """The estimate against this machine's largest GPU (or RAM); None when the shape is unknown.

    `gpus` are the GPUs to compare against when the caller already knows them; None detects them.
    """
    from services.gpu import detect_gpus

    shape = shape_or_none(config, params)
    if shape is None:
        return None
    gpus = detect_gpus() if gpus is None else gpus
    largest = max(gpus, key=lambda g: g.total_bytes) if gpus else None
    device = host_device(largest.name, largest.total_bytes) if largest else host_device(None, None)
    return estimate(shape, device, work)
