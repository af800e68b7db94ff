"""Training data: read rows with line-precise errors, check columns, render examples, count tokens."""

from __future__ import annotations

import csv
import json
import statistics
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import ConfigError, NotFoundError
from services.finetune.spec import JobSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Row = dict[str, Any]


def load_rows(path_or_id: str) -> list[Row]:
    """All rows of a JSONL, CSV or Parquet file, or of a dataset in the local HF cache."""
    path = Path(path_or_id).expanduser()
    if path.suffix == ".jsonl":
        return _jsonl(path)
    if path.suffix == ".csv":
        with _open(path) as fh:
            return list(csv.DictReader(fh))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        _open(path).close()
        return list(pq.read_table(path).to_pylist())
    if path.exists():
        raise ConfigError(f"dataset.path: {path}: unsupported format", hint="use .jsonl, .csv or .parquet")
    return _cached_dataset(path_or_id)


def _open(path: Path) -> Any:
    try:
        return path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"dataset.path: {path} does not exist") from None


def _jsonl(path: Path) -> list[Row]:
    rows = []
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: invalid JSON: {exc.msg}", hint="fix or remove that line") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object per line")
            rows.append(row)
    return rows


def _cached_dataset(dataset_id: str) -> list[Row]:
    import datasets

    try:
        loaded = datasets.load_dataset(dataset_id, split="train", download_mode="reuse_cache_if_exists")
    except Exception as exc:  # datasets raises many types for "not there"
        raise NotFoundError(
            f"dataset.path: '{dataset_id}' is neither a file nor a dataset in the HF cache ({type(exc).__name__})",
            hint="give a .jsonl/.csv/.parquet path",
        ) from None
    return list(loaded)


def placeholders(template: str) -> list[str]:
    """Column names used as {placeholders} in a template."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def required_columns(spec: JobSpec) -> dict[str, list[str]]:
    """Which spec field needs which columns."""
    data = spec.dataset
    if spec.task == "sequence-classification":
        return {"dataset.text_column": [data.text_column], "dataset.label_column": [data.label_column]}
    if data.messages_column:
        return {"dataset.messages_column": [data.messages_column]}
    return {
        "dataset.prompt_template": placeholders(data.prompt_template),
        "dataset.completion_template": placeholders(data.completion_template),
    }


def check_columns(spec: JobSpec, rows: list[Row]) -> None:
    """Refuse a job whose templates or column settings name a column the data lacks."""
    if not rows:
        raise ConfigError(f"dataset.path: {spec.dataset.path} has no rows")
    columns = set().union(*(row.keys() for row in rows[:100]))
    for field, needed in required_columns(spec).items():
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ConfigError(
                f"{field}: column '{missing[0]}' is not in {spec.dataset.path}",
                hint=f"columns there: {', '.join(sorted(columns))}",
            )


@dataclass(frozen=True)
class Example:
    """One row rendered for training: prompt and completion (or text and label)."""

    prompt: str
    completion: str


def render(spec: JobSpec, row: Row, tokenizer: PreTrainedTokenizerBase | None = None) -> Example:
    """The text the model sees for one row."""
    data = spec.dataset
    if spec.task == "sequence-classification":
        return Example(str(row.get(data.text_column) or ""), str(row.get(data.label_column)))
    if data.messages_column:
        if tokenizer is None:
            raise ValueError("chat rows need the model's tokenizer")
        messages = row[data.messages_column]
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        return Example(str(prompt), str(messages[-1]["content"]))
    values = {k: "" if v is None else v for k, v in row.items()}
    return Example(data.prompt_template.format_map(values), data.completion_template.format_map(values))


def empty_fields(spec: JobSpec, rows: list[Row]) -> list[tuple[int, str]]:
    """(row number from 1, column) for every required field that is missing or empty."""
    needed = [c for cols in required_columns(spec).values() for c in cols]
    return [(i, c) for i, row in enumerate(rows, start=1) for c in needed if row.get(c) in (None, "", [])]


@dataclass(frozen=True)
class TokenStats:
    """Token lengths of the rendered rows."""

    count: int
    minimum: int
    mean: float
    p95: int
    maximum: int
    over_limit: int
    total: int


def token_stats(lengths: list[int], limit: int) -> TokenStats:
    ordered = sorted(lengths) or [0]
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return TokenStats(
        count=len(lengths),
        minimum=ordered[0],
        mean=statistics.fmean(ordered),
        p95=p95,
        maximum=ordered[-1],
        over_limit=sum(n > limit for n in lengths),
        total=sum(lengths),
    )


def example_lengths(spec: JobSpec, rows: list[Row], tokenizer: PreTrainedTokenizerBase) -> list[int]:
    examples = [render(spec, row, tokenizer) for row in rows]
    if spec.task == "sequence-classification":
        texts = [e.prompt for e in examples]
    else:
        texts = [e.prompt + e.completion for e in examples]
    return [len(ids) + 1 for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
