"""The new-job form's fields: each input bound to a dotted path of the job spec, and the conversions
between what a widget shows and what the spec takes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel

from services.errors import ConfigError
from services.finetune.spec import JobSpec, Method, Precision, Scheduler, Task
from workbench.tui.widgets import short_path

Kind = Literal["text", "int", "float", "choice", "bool", "multiline", "model", "targets", "optional", "path"]


@dataclass(frozen=True)
class Field:
    """One input of the form, bound to a dotted path in the job spec."""

    path: str
    label: str
    kind: Kind = "text"
    choices: tuple[str, ...] = ()
    task: Task | None = None
    """Shown only for this task."""

    @property
    def widget_id(self) -> str:
        return "f-" + self.path.replace(".", "-").replace("_", "-")


LEFT: tuple[str | Field, ...] = (
    "Job",
    Field("name", "name"),
    Field("model.id", "base model", "model"),
    Field("task", "task", "choice", get_args(Task)),
    "Data",
    Field("dataset.path", "dataset", "path"),
    Field("dataset.prompt_template", "prompt template", "multiline", task="causal-lm"),
    Field("dataset.completion_template", "completion", task="causal-lm"),
    Field("dataset.messages_column", "messages column", "optional", task="causal-lm"),
    Field("dataset.text_column", "text column", task="sequence-classification"),
    Field("dataset.label_column", "label column", task="sequence-classification"),
    Field("dataset.eval_split", "eval split", "float"),
    "LoRA",
    Field("lora.method", "method", "choice", get_args(Method)),
    Field("lora.r", "r", "int"),
    Field("lora.alpha", "alpha", "int"),
    Field("lora.dropout", "dropout", "float"),
    Field("lora.target_modules", "target modules", "targets"),
)
RIGHT: tuple[str | Field, ...] = (
    "Training",
    Field("training.learning_rate", "learning rate", "float"),
    Field("training.scheduler", "scheduler", "choice", get_args(Scheduler)),
    Field("training.warmup_ratio", "warmup ratio", "float"),
    Field("training.epochs", "epochs", "float"),
    Field("training.max_steps", "max steps", "int"),
    Field("training.micro_batch_size", "micro-batch", "int"),
    Field("training.gradient_accumulation", "grad accumulation", "int"),
    Field("training.max_seq_length", "max seq length", "int"),
    Field("training.packing", "packing", "bool"),
    Field("training.gradient_checkpointing", "grad checkpointing", "bool"),
    Field("training.precision", "precision", "choice", get_args(Precision)),
    Field("training.seed", "seed", "int"),
    Field("training.save_every", "save every", "int"),
    Field("training.eval_every", "eval every", "int"),
    Field("training.keep_checkpoints", "keep last K", "int"),
)
FIELDS = tuple(f for f in (*LEFT, *RIGHT) if isinstance(f, Field))
FIELD_BY_ID = {f.widget_id: f for f in FIELDS}
Shown = str | bool


def spec_value(spec: BaseModel, path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        value = getattr(value, part)
    return value


def description(path: str) -> str:
    """The documentation of a spec field (its attribute docstring)."""
    model: Any = JobSpec
    info = None
    for part in path.split("."):
        info = model.model_fields[part]
        model = info.annotation
    return (info.description or "") if info is not None else ""


def shown(field: Field, value: Any) -> Shown:
    """A spec value as its widget shows it."""
    if field.kind == "bool":
        return bool(value)
    if field.kind == "targets" and isinstance(value, list):
        return ", ".join(value)
    if field.kind == "path":
        return short_path(value)
    return "" if value is None else str(value)


def spec_input(field: Field, raw: Shown) -> Any:
    """A widget's value as the spec takes it (numbers stay text: the spec model parses and checks them)."""
    if field.kind == "bool" or not isinstance(raw, str):
        return raw
    text = raw if field.kind == "multiline" else raw.strip()
    if field.kind == "optional":
        return text or None
    if field.kind == "path":
        return str(Path(text).expanduser()) if text else text
    if field.kind == "targets" and text not in {"auto", "all-linear"}:
        return [name.strip() for name in text.split(",") if name.strip()]
    return text


def form_data(base: JobSpec, values: dict[str, Shown]) -> dict[str, Any]:
    """`base` as a dict with the form's values put in (fields the form lacks keep base's values)."""
    data: dict[str, Any] = base.model_dump(mode="python")
    for field in FIELDS:
        *parents, last = field.path.split(".")
        target = data
        for part in parents:
            target = target[part]
        target[last] = spec_input(field, values[field.path])
    return data


def field_of(error: ConfigError) -> str:
    """The dotted field path a spec error names ("form: training.r: ..." gives "training.r")."""
    parts = error.message.split(": ")
    return parts[1] if len(parts) > 2 else ""
