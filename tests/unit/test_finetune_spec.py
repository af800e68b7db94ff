"""Job files: validation errors name the field, commented templates round-trip, summaries say what to do."""

import tomllib
from pathlib import Path

import pytest

from services.errors import ConfigError
from services.finetune.data import placeholders, token_stats
from services.finetune.runner import error_summary
from services.finetune.spec import load_spec, parse_spec
from services.finetune.template import commented_toml, default_spec
from services.finetune.worker import split


def test_commented_template_round_trips_and_documents_every_field(tmp_path: Path) -> None:
    spec = default_spec("workbench-demo/tiny-llama", "data.jsonl")
    text = commented_toml(spec)
    assert parse_spec(tomllib.loads(text), source="x") == spec
    assert "# Peak learning rate." in text and "# LoRA rank." in text


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('name = "x"\n[model]\nid = "a/b"\n', "dataset: field required"),
        ('name = "bad name!"\n[model]\nid = "a"\n[dataset]\npath = "d"\n', "name: string should match pattern"),
        (
            'name = "x"\n[model]\nid = "a"\n[dataset]\npath = "d"\n[lora]\nmethod = "dora"\n',
            "lora.method: input should be",
        ),
        (
            'name = "x"\n[model]\nid = "a"\n[dataset]\npath = "d"\n'
            '[training]\nnum_processes = 1\ndistributed = "fsdp"\n',
            "num_processes >= 2",
        ),
        ('name = "x"\n[model\n', "not valid TOML"),
    ],
)
def test_invalid_job_files_name_file_and_field(tmp_path: Path, toml: str, message: str) -> None:
    job = tmp_path / "job.toml"
    job.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_spec(job)
    assert str(job) in str(err.value) and message in str(err.value)


def test_out_of_memory_summary_says_what_to_change() -> None:
    summary = error_summary(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 812)
    assert summary.startswith("CUDA out of memory at step 812: try")
    assert "gradient_checkpointing" in summary and "qlora" in summary
    assert error_summary(ValueError("bad\nmore"), 3) == "ValueError at step 3: bad"


def test_split_is_seeded_and_keeps_every_row() -> None:
    rows = list(range(50))
    train, held = split(rows, 0.2, seed=1)
    assert sorted(train + held) == rows and len(held) == 10
    assert split(rows, 0.2, seed=1) == (train, held)
    assert split(rows, 0, seed=1) == (rows, [])


def test_token_stats_and_placeholders() -> None:
    stats = token_stats([10, 20, 30, 40, 500], limit=100)
    assert (stats.minimum, stats.maximum, stats.over_limit, stats.total) == (10, 500, 1, 600)
    assert placeholders("{instruction} and {input}!") == ["instruction", "input"]


def test_quantised_methods_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from services.finetune.plan import quantisation_refusal

    assert quantisation_refusal("lora", cuda=False) is None
    assert "needs a CUDA GPU" in (quantisation_refusal("qlora", cuda=False) or "")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "needs bitsandbytes" in (quantisation_refusal("lora-8bit", cuda=True) or "")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert quantisation_refusal("qlora", cuda=True) is None
