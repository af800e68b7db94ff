"""Fixtures: a tiny sequence-classification Llama, a LoRA adapter trained on it, and the app.

The model and adapter are built once per session; apps share one loaded model through their
`loader`, so each test pays only for the requests it makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from appkit import testing
from fastapi import FastAPI

from classifier.app import create_app, load_model
from classifier.engine import Classifier
from classifier.settings import Settings
from classifier_support import CANARY_KEY, NEGATIVE, POSITIVE
from tests import app_fixtures

# shared fixtures: the kit's (they use `canary_key` and `app_factory` below) and the workbench's demo Llama
client = testing.client
key_file = testing.key_file
log_lines = testing.log_lines
tiny_llama = app_fixtures.demo_llama

LABELS = {0: "negative", 1: "positive"}


@pytest.fixture(scope="session")
def demo_model(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LlamaForSequenceClassification with the demo's tiny config, two labels and id2label set."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    folder = tmp_path_factory.mktemp("seq-cls")
    config = LlamaConfig.from_pretrained(
        tiny_llama, num_labels=2, id2label=LABELS, label2id={"negative": 0, "positive": 1}
    )
    torch.manual_seed(11)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def demo_adapter(demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter (with the trained classification head) taught to tell `great` from `awful`."""
    folder = tmp_path_factory.mktemp("adapter")
    model, tokenizer = _trainable(demo_model, num_labels=None)
    _train(model, tokenizer, POSITIVE + NEGATIVE, [1] * len(POSITIVE) + [0] * len(NEGATIVE))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def workbench_adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter as the workbench's fine-tunes save one: on the causal-LM base, labels in manifest.json."""
    folder = tmp_path_factory.mktemp("workbench-adapter")
    model, tokenizer = _trainable(tiny_llama, num_labels=3)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "manifest.json").write_text(json.dumps({"kind": "adapter", "labels": ["bug", "question", "praise"]}))
    return folder


def _trainable(base: Path, *, num_labels: int | None) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(5)
    extra = {"num_labels": num_labels} if num_labels else {}
    model = AutoModelForSequenceClassification.from_pretrained(base, **extra)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model.config.pad_token_id = tokenizer.pad_token_id
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS")
    return get_peft_model(model, lora), tokenizer


def _train(model: Any, tokenizer: Any, texts: list[str], labels: list[int], steps: int = 60) -> None:
    import torch

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    target = torch.tensor(labels)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=target).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


@pytest.fixture(scope="session")
def canary_key() -> str:
    return CANARY_KEY


@pytest.fixture(scope="session")
def make_settings(demo_model: Path, demo_adapter: Path, key_file: Path) -> Callable[..., Settings]:
    """Settings for the demo model and adapter; keyword arguments override fields."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"model_path": demo_model, "adapter_path": demo_adapter, "api_keys_file": key_file}
        return Settings(**(values | overrides))

    return make


@pytest.fixture(scope="session")
def loaded(make_settings: Callable[..., Settings]) -> Classifier:
    """The demo model and adapter, loaded once by the real loader."""
    return load_model(make_settings())


@pytest.fixture(scope="session")
def app_factory(make_settings: Callable[..., Settings], loaded: Classifier) -> Callable[..., FastAPI]:
    """`app_factory(**settings)`: an app on the shared loaded model."""

    def make(**overrides: Any) -> FastAPI:
        return create_app(make_settings(**overrides), loader=lambda settings: loaded)

    return make
