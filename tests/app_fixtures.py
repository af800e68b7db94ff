"""What the apps' tests (apps/*/tests) take from the workbench: its demo tiny Llama, the model a
fine-tune starts from (their conftests bind it to the name they use)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workbench's demo tiny Llama (random weights, a locally trained tokenizer), built once per session."""
    from services.demo import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("demo-llama"))
