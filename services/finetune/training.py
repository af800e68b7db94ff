"""Everything the trainer process builds: model (k-bit when asked), LoRA, tokenised data, Trainer.

transformers' Trainer runs the loop; peft wraps the model; bitsandbytes quantises for qlora and
lora-8bit. This module only translates a `JobSpec` into their arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import UsageError
from services.finetune.data import Row, render
from services.finetune.spec import JobSpec

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback

IGNORE = -100


def model_class(spec: JobSpec) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return AutoModelForCausalLM if spec.task == "causal-lm" else AutoModelForSequenceClassification


def lora_config(spec: JobSpec, base: Any) -> Any:
    from peft import LoraConfig, TaskType

    targets = spec.lora.target_modules
    if targets == "auto":
        targets = linear_module_names(base)
    return LoraConfig(
        r=spec.lora.r,
        lora_alpha=spec.lora.alpha,
        lora_dropout=spec.lora.dropout,
        target_modules=targets,
        task_type=TaskType.CAUSAL_LM if spec.task == "causal-lm" else TaskType.SEQ_CLS,
    )


def linear_module_names(model: Any) -> list[str]:
    """Names (last component) of every linear layer except the output head: LoRA's default targets."""
    import torch

    skip = {"lm_head", "score", "classifier"}
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    return sorted(names - skip)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_precision(spec: JobSpec) -> str:
    """bf16 / fp16 / fp32: "auto" picks bf16 on GPUs that have it natively (not emulated: slow), fp16 on
    older GPUs, fp32 on CPU."""
    if spec.training.precision != "auto":
        return spec.training.precision
    if not cuda_available():
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def distributed_state() -> Any:
    """accelerate's process state (process group, this rank's device); create it before CUDA is touched."""
    from accelerate import PartialState

    return PartialState(cpu=not cuda_available())


GRADIENT_CHECKPOINTING = {"use_reentrant": False}
"""Explicit: the non-reentrant variant works with frozen inputs (LoRA), FSDP and DDP."""


def require_cuda_for_kbit(spec: JobSpec) -> None:
    """QLoRA and 8-bit LoRA need bitsandbytes on CUDA: refuse clearly on other machines."""
    if spec.lora.method != "lora" and not cuda_available():
        raise UsageError(
            f'lora.method = "{spec.lora.method}" needs a CUDA GPU (bitsandbytes); this machine has none',
            hint='use lora.method = "lora", which trains on the CPU',
        )


def load_model(spec: JobSpec, path: Path, labels: list[str]) -> Any:
    """The base model with LoRA attached, quantised for qlora / lora-8bit."""
    from appkit.adapters import peft_warnings_understood
    from peft import get_peft_model

    require_cuda_for_kbit(spec)
    base = model_class(spec).from_pretrained(path, **load_kwargs(spec, labels, local_rank=_local_rank()))
    if spec.task == "sequence-classification" and base.config.pad_token_id is None:
        base.config.pad_token_id = base.config.eos_token_id
    with peft_warnings_understood():
        return get_peft_model(_prepare_kbit(spec, base), lora_config(spec, base))


def _local_rank() -> int:
    return int(distributed_state().local_process_index)


def sharded(spec: JobSpec) -> bool:
    return spec.training.distributed == "fsdp" and spec.training.num_processes > 1


def load_kwargs(spec: JobSpec, labels: list[str], *, local_rank: int) -> dict[str, Any]:
    """`from_pretrained` arguments: dtype, labels and, for k-bit, quantisation and placement.

    k-bit without FSDP puts the whole model on this rank's own GPU; with FSDP the model loads
    without a device map in the quantised storage dtype, and FSDP places and shards it."""
    dtype = torch_dtype(resolve_precision(spec))
    kwargs: dict[str, Any] = {"dtype": dtype}
    if spec.task == "sequence-classification":
        kwargs |= {"num_labels": len(labels), "id2label": dict(enumerate(labels))}
        kwargs["label2id"] = {label: i for i, label in enumerate(labels)}
    if spec.lora.method != "lora":
        kwargs["quantization_config"] = quantization(spec, dtype)
        if not sharded(spec):
            kwargs["device_map"] = {"": local_rank}
    return kwargs


def _prepare_kbit(spec: JobSpec, base: Any) -> Any:
    """PEFT's k-bit preparation; with FSDP only input gradients, since its fp32 casting would leave
    FSDP with mixed dtypes to flatten (gradient checkpointing comes from TrainingArguments)."""
    from peft import prepare_model_for_kbit_training

    if spec.lora.method == "lora":
        return base
    checkpointing = spec.training.gradient_checkpointing
    if sharded(spec):
        if checkpointing:
            base.enable_input_require_grads()
        return base
    return prepare_model_for_kbit_training(
        base, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs=GRADIENT_CHECKPOINTING
    )


def quantization(spec: JobSpec, dtype: Any) -> Any:
    """bitsandbytes settings; QLoRA under FSDP stores its 4-bit weights in the (float) compute dtype,
    so FSDP can flatten and shard them with the rest."""
    from transformers import BitsAndBytesConfig

    if spec.lora.method == "lora-8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    extra = {"bnb_4bit_quant_storage": dtype} if sharded(spec) else {}
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        **extra,
    )


def class_labels(spec: JobSpec, rows: list[Row]) -> list[str]:
    """Sorted distinct labels of a classification dataset (empty for causal-lm)."""
    if spec.task != "sequence-classification":
        return []
    return sorted({str(row[spec.dataset.label_column]) for row in rows})


def tokenize(spec: JobSpec, rows: list[Row], tokenizer: PreTrainedTokenizerBase, labels: list[str]) -> Dataset:
    """Tokenised examples; causal-lm labels mask the prompt so the loss is on the completion only."""
    from datasets import Dataset

    limit = spec.training.max_seq_length
    if spec.task == "sequence-classification":
        index = {label: i for i, label in enumerate(labels)}
        examples = [render(spec, row) for row in rows]
        enc = tokenizer([e.prompt for e in examples], truncation=True, max_length=limit)
        return Dataset.from_dict({**enc, "labels": [index[e.completion] for e in examples]})
    features = [_causal_features(render(spec, row, tokenizer), tokenizer, limit) for row in rows]
    dataset = Dataset.from_list(features)
    return pack(dataset, limit) if spec.training.packing else dataset


def _causal_features(example: Any, tokenizer: PreTrainedTokenizerBase, limit: int) -> dict[str, list[int]]:
    prompt = tokenizer(example.prompt, add_special_tokens=True)["input_ids"]
    completion = tokenizer(example.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt + completion)[:limit]
    labels = ([IGNORE] * len(prompt) + completion)[:limit]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def pack(dataset: Dataset, block: int) -> Dataset:
    """Concatenate examples and cut them into full `block`-token rows (no padding at all)."""

    def group(batch: dict[str, list[list[int]]]) -> dict[str, list[list[int]]]:
        joined = {k: [t for seq in batch[k] for t in seq] for k in ("input_ids", "labels")}
        usable = len(joined["input_ids"]) // block * block
        out = {k: [v[i : i + block] for i in range(0, usable, block)] for k, v in joined.items()}
        out["attention_mask"] = [[1] * block for _ in out["input_ids"]]
        return out

    return dataset.map(group, batched=True, batch_size=1000, remove_columns=dataset.column_names)


def training_arguments(spec: JobSpec, job_dir: Path, *, evaluate: bool) -> Any:
    """The Trainer's arguments for this job (checkpoints under JOB_DIR/checkpoints)."""
    from transformers import TrainingArguments

    t = spec.training
    precision = resolve_precision(spec)
    return TrainingArguments(
        output_dir=str(job_dir / "checkpoints"),
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.scheduler,
        warmup_steps=t.warmup_ratio,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.micro_batch_size,
        per_device_eval_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        activation_checkpointing=t.gradient_checkpointing,  # gradient checkpointing's name in transformers 5
        activation_checkpointing_kwargs=GRADIENT_CHECKPOINTING if t.gradient_checkpointing else None,
        ddp_find_unused_parameters=False,  # LoRA uses every trainable weight in each forward pass
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not cuda_available(),
        seed=t.seed,
        save_strategy="steps",
        save_steps=t.save_every,
        save_total_limit=t.keep_checkpoints,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=t.eval_every,
        logging_steps=1,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
    )


def build_trainer(
    spec: JobSpec,
    job_dir: Path,
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    train: Dataset,
    evaluation: Dataset | None,
    callbacks: list[TrainerCallback],
) -> Trainer:
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding, Trainer

    if spec.task == "sequence-classification":
        collator: Any = DataCollatorWithPadding(tokenizer)
    else:
        collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE)
    return Trainer(
        model=model,
        args=training_arguments(spec, job_dir, evaluate=evaluation is not None),
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collator,
        callbacks=callbacks,
    )
