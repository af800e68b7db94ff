"""The job definition: a TOML file validated by a typed model, so every run is reproducible."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.errors import ConfigError

Task = Literal["causal-lm", "sequence-classification"]
Method = Literal["lora", "qlora", "lora-8bit"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
Scheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]
Distributed = Literal["none", "fsdp", "deepspeed"]

ALPACA_PROMPT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ModelRef(Strict):
    id: str = Field(min_length=1)
    """Hub repo id in the HF cache (e.g. workbench-demo/tiny-llama) or a local folder."""

    revision: str = "main"
    """Branch, tag or commit in the HF cache; resolved to a commit hash at launch."""


class DatasetSpec(Strict):
    path: str = Field(min_length=1)
    """A .jsonl, .csv or .parquet file, or a dataset id in the local HF cache."""

    prompt_template: str = ALPACA_PROMPT
    """causal-lm: the prompt, with {column} placeholders. The loss is on the completion only."""

    completion_template: str = "{output}"
    """causal-lm: the completion the model learns, with {column} placeholders."""

    messages_column: str | None = None
    """causal-lm chat data: a column of [{role, content}] lists, rendered with the chat template."""

    text_column: str = "text"
    """sequence-classification: the input text column."""

    label_column: str = "label"
    """sequence-classification: the label column (strings or integers)."""

    eval_split: float = Field(default=0.1, ge=0, lt=1)
    """Fraction of rows held out for evaluation (0 turns evaluation off)."""


class LoraSpec(Strict):
    method: Method = "lora"
    """lora (bf16/fp32 base), qlora (4-bit NF4, double quantisation; CUDA only), lora-8bit (CUDA only, no FSDP)."""

    r: int = Field(default=16, gt=0)
    """LoRA rank."""

    alpha: int = Field(default=32, gt=0)
    """LoRA scaling numerator (scale = alpha / r)."""

    dropout: float = Field(default=0.05, ge=0, lt=1)
    """Dropout on the LoRA inputs."""

    target_modules: str | list[str] = "auto"
    """"auto" (every linear layer of the model found at launch), "all-linear", or module names."""


class TrainingSpec(Strict):
    learning_rate: float = Field(default=2e-4, gt=0)
    """Peak learning rate."""

    scheduler: Scheduler = "cosine"
    """Learning-rate schedule."""

    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    """Fraction of the steps spent warming up."""

    epochs: float = Field(default=1.0, gt=0)
    """Passes over the training split (ignored when max_steps > 0)."""

    max_steps: int = -1
    """Stop after this many optimiser steps (-1: run the epochs)."""

    micro_batch_size: int = Field(default=4, gt=0)
    """Examples per device per forward pass."""

    gradient_accumulation: int = Field(default=1, gt=0)
    """Micro-batches per optimiser step."""

    max_seq_length: int = Field(default=512, gt=0)
    """Tokens per example; longer rows are truncated (the plan counts them)."""

    packing: bool = False
    """Concatenate short examples into full max_seq_length blocks (causal-lm)."""

    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 30 % slower."""

    precision: Precision = "auto"
    """auto: bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU."""

    seed: int = 42
    """Random seed for data order and initialisation."""

    save_every: int = Field(default=50, gt=0)
    """Save a checkpoint every N steps."""

    eval_every: int = Field(default=50, gt=0)
    """Evaluate every N steps."""

    keep_checkpoints: int = Field(default=2, gt=0)
    """Keep the last K checkpoints."""

    num_processes: int = Field(default=1, gt=0)
    """Training processes, one per GPU; more than 1 launches through `accelerate launch`."""

    gpus: Annotated[int, Field(ge=1)] | Literal["all"] | None = None
    """GPUs this job takes from the machine's queue; default one per process."""

    distributed: Distributed = "none"
    """Multi-GPU strategy for num_processes > 1: plain DDP (none) or fsdp (shards the model)."""

    @field_validator("distributed")
    @classmethod
    def _no_deepspeed(cls, value: Distributed) -> Distributed:
        if value == "deepspeed":
            raise ValueError(
                "deepspeed is not supported here (it is not installed and no ZeRO config is written); "
                'use distributed = "fsdp" to shard the model across GPUs'
            )
        return value

    @model_validator(mode="after")
    def _a_gpu_per_process(self) -> TrainingSpec:
        if isinstance(self.gpus, int) and self.num_processes > self.gpus:
            raise ValueError(
                f"training.num_processes = {self.num_processes} needs a GPU each but training.gpus = {self.gpus}; "
                "raise gpus or lower num_processes"
            )
        return self


class JobSpec(Strict):
    """A fine-tune job as written in JOB.toml."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Job name: letters, digits, '.', '_' and '-'."""

    task: Task = "causal-lm"
    """causal-lm (instruction or chat SFT) or sequence-classification."""

    model: ModelRef
    dataset: DatasetSpec
    lora: LoraSpec = Field(default_factory=LoraSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @model_validator(mode="after")
    def _distributed_needs_processes(self) -> JobSpec:
        if self.training.distributed != "none" and self.training.num_processes < 2:
            raise ValueError("training.distributed needs training.num_processes >= 2")
        if self.training.distributed == "fsdp" and self.lora.method == "lora-8bit":
            raise ValueError(
                'lora.method = "lora-8bit" cannot be sharded with training.distributed = "fsdp" '
                '(FSDP needs float weights); use lora.method = "qlora" with fsdp, or distributed = "none"'
            )
        return self


def gpus_wanted(spec: JobSpec) -> int | Literal["all"]:
    """The GPUs a job takes from the queue: `training.gpus`, else one per process."""
    return spec.training.num_processes if spec.training.gpus is None else spec.training.gpus


def load_spec(path: Path) -> JobSpec:
    """Read and validate a job file; errors name the file, the field and the reason."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(data, source=str(path))


def parse_spec(data: dict[str, object], *, source: str) -> JobSpec:
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "job"
        reason = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].lower()
        got = "" if first["type"] in {"extra_forbidden", "missing"} else f" (got {first['input']!r})"
        raise ConfigError(f"{source}: {field}: {reason}{got}") from None


def dump_spec(spec: JobSpec) -> str:
    """The job as TOML (the job folder keeps this copy)."""
    import tomli_w

    return tomli_w.dumps(spec.model_dump(mode="json", exclude_none=True))
