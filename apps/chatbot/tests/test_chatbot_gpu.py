"""4-bit without CUDA: the load fails and `/readyz` says so, instead of serving an fp32 model from the CPU."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from appkit.testing import settled_state
from fastapi.testclient import TestClient

from chatbot.app import create_app
from chatbot.engine import LoadError, device_kwargs
from chatbot.settings import Settings


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_4bit_without_cuda_is_a_load_error(no_cuda: None) -> None:
    with pytest.raises(LoadError, match=r"CHATBOT_LOAD_4BIT=true but no CUDA GPU is visible"):
        device_kwargs(load_4bit=True)
    kwargs, quantized = device_kwargs(load_4bit=False)
    assert not quantized and "device_map" not in kwargs  # full precision on the CPU only when asked for


def test_4bit_without_cuda_fails_readyz_with_the_reason_in_the_log(
    no_cuda: None, make_settings: Callable[..., Settings], log_lines: io.StringIO
) -> None:
    with TestClient(create_app(make_settings(load_4bit=True))) as client:
        state = settled_state(client)
        readyz = client.get("/readyz")
    assert readyz.status_code == 503 and state == {"status": "failed", "model": "chatbot"}
    failure = next(json.loads(line) for line in log_lines.getvalue().splitlines() if "loading failed" in line)
    assert "CHATBOT_LOAD_4BIT=true but no CUDA GPU is visible" in failure["error"]
    assert "--gpus all" in failure["error"]
