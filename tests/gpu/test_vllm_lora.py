"""The chatbot's `vllm` engine on a GPU: vLLM's OpenAI server (the sidecar) serves the demo model with
the demo LoRA adapter, and the chatbot (`CHATBOT_ENGINE=vllm`) answers through it with its own RAG.

Skips unless a CUDA GPU is visible and `vllm` is installed (the GPU test image; see
apps/chatbot/README.md, "Engines"). Run: `.venv/bin/python -m pytest -q tests/gpu`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "apps" / "chatbot"
DOCUMENTS = Path(__file__).resolve().parents[2] / "services" / "demo_data" / "documents"
FRONT_KEY = "sk-front-gpu-check"
VLLM_KEY = "sk-vllm-gpu-check"


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


pytestmark = pytest.mark.skipif(
    not (_cuda() and importlib.util.find_spec("vllm") is not None), reason="needs a CUDA GPU and vllm"
)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float, headers: dict[str, str] | None = None) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"{url}: the process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers, timeout=5, trust_env=False).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The demo model, a LoRA adapter for it (as the workbench's fine-tunes save theirs) and the demo collection."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from services.demo import build_tiny_llama
    from services.rag.chroma import persistent_client
    from services.rag.ingest import ingest

    model = build_tiny_llama(tmp_path_factory.mktemp("demo-llama"))
    adapter = tmp_path_factory.mktemp("adapters") / "demo-lora"
    torch.manual_seed(7)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(model), lora).save_pretrained(str(adapter))
    AutoTokenizer.from_pretrained(model).save_pretrained(adapter)
    store = tmp_path_factory.mktemp("chroma")
    ingest(
        persistent_client(store),
        [DOCUMENTS],
        collection="demo-docs",
        model_id="sentence-transformers/all-MiniLM-L6-v2",
        cache_dir=tmp_path_factory.mktemp("hf-cache"),
        chunk_size=48,
        overlap=8,
    )
    return model, adapter, store


def test_the_chatbot_answers_through_vllm_with_the_lora_adapter(demo: tuple[Path, Path, Path], tmp_path: Path) -> None:
    import httpx
    from chatbot.vllm_engine import lora_name, vllm_command

    model, adapter, store = demo
    keys = tmp_path / "keys"
    keys.write_text(FRONT_KEY + "\n")
    vllm_port, front_port = _port(), _port()
    command = vllm_command(
        model, adapter, host="127.0.0.1", port=vllm_port, max_model_len=512, gpu_memory_utilization=0.3
    )
    command += ["--enforce-eager"]
    vllm_env = {"VLLM_API_KEY": VLLM_KEY}
    front_env = {
        "CHATBOT_ENGINE": "vllm",
        "CHATBOT_UPSTREAM_URL": f"http://127.0.0.1:{vllm_port}/v1",
        "CHATBOT_UPSTREAM_API_KEY_ENV": "GPU_CHECK_VLLM_KEY",
        "GPU_CHECK_VLLM_KEY": VLLM_KEY,
        "CHATBOT_MODEL_PATH": str(model),
        "CHATBOT_ADAPTER_PATH": str(adapter),
        "CHATBOT_COLLECTION_PATH": str(store),
        "CHATBOT_WORK_DIR": str(tmp_path),
        "CHATBOT_API_KEYS_FILE": str(keys),
        "PYTHONPATH": os.pathsep.join([str(APP), str(APP.parent / "appkit"), os.environ.get("PYTHONPATH", "")]),
    }
    front = [sys.executable, "-m", "uvicorn", "--factory", "chatbot.app:create_app", "--port", str(front_port)]
    with (
        _process(command, vllm_env, tmp_path / "vllm.log") as vllm,
        _process([*front, "--host", "127.0.0.1"], front_env, tmp_path / "front.log") as chatbot,
    ):
        _wait(f"http://127.0.0.1:{vllm_port}/health", vllm, 900)
        _wait(f"http://127.0.0.1:{front_port}/readyz", chatbot, 120)
        listed = httpx.get(
            f"http://127.0.0.1:{vllm_port}/v1/models", headers={"Authorization": f"Bearer {VLLM_KEY}"}, trust_env=False
        ).json()
        assert lora_name(adapter) in {card["id"] for card in listed["data"]}

        auth = {"Authorization": f"Bearer {FRONT_KEY}"}
        question = {"role": "user", "content": "How much GPU memory does a 7B model need in 4-bit?"}
        body = {"model": "chatbot", "messages": [question], "max_tokens": 16, "temperature": 0}
        url = f"http://127.0.0.1:{front_port}/v1/chat/completions"
        answer = httpx.post(url, json=body, headers=auth, timeout=120, trust_env=False)
        assert answer.status_code == 200, answer.text
        assert isinstance(answer.json()["choices"][0]["message"]["content"], str)
        assert answer.json()["sources"] and answer.json()["usage"]["completion_tokens"] > 0

        with httpx.stream("POST", url, json=body | {"stream": True}, headers=auth, timeout=120, trust_env=False) as r:
            lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
        assert r.status_code == 200 and lines[-1] == "[DONE]"
        text = "".join(json.loads(line)["choices"][0]["delta"].get("content", "") for line in lines[:-1])
        assert text == answer.json()["choices"][0]["message"]["content"]  # greedy: the same answer twice
    assert VLLM_KEY not in (tmp_path / "front.log").read_text()
