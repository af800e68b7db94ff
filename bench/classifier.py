"""Classifier throughput: CLIENTS concurrent clients vs the same requests one at a time.

The app (apps/classifier) on a demo-sized sequence-classification Llama (the demo model's config
and tokenizer, two labels, random weights), served by uvicorn in a process of its own and asked
over HTTP with one text per request. Ours: CLIENTS clients each sending ROUNDS requests back to
back, so the service gathers their texts into shared forward passes. Peer: the same requests
sent one at a time to the same server. Goal (the batching issue): >= 3x. `python -m bench classifier`.

The server runs with one intra-op thread (OMP_NUM_THREADS=1), as bench/stream.py does: on a small
shared CPU, torch's default OpenMP team spins against the other processes and a one-text forward
pass took 125 ms instead of 1.5 ms, which would make the one-at-a-time peer look far worse.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report

CLIENTS = 32
ROUNDS = 4
KEY = "bench-key"
WORDS = "the deploy failed again after the adapter was merged and the release rolled back".split()


def build_model(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from services.demo import build_tiny_llama

    demo = build_tiny_llama(folder.parent / "demo")
    config = LlamaConfig.from_pretrained(demo, num_labels=2, id2label={0: "negative", 1: "positive"})
    torch.manual_seed(11)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(demo).save_pretrained(folder)
    return folder


def serve(model: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """The classifier in a uvicorn process of its own on a loopback port; its base URL and the process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).parents[1]
    env = os.environ | {
        "CLASSIFIER_MODEL_PATH": str(model),
        "CLASSIFIER_API_KEYS": KEY,
        "CLASSIFIER_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(root / "apps" / "classifier"), str(root / "apps" / "appkit")]),
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "classifier.app:create_app", "--port", str(port)]
    process = subprocess.Popen([*command, "--log-level", "warning", "--no-access-log"], env=env)
    return f"http://127.0.0.1:{port}", process


async def wait_ready(url: str) -> None:
    import httpx

    async with httpx.AsyncClient(trust_env=False) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the classifier did not become ready")


def text(i: int) -> str:
    return " ".join(WORDS[(i + j) % len(WORDS)] for j in range(8 + i % 9))


async def rates(url: str) -> tuple[float, float]:
    """Requests/s with CLIENTS concurrent clients, and one at a time."""
    import httpx

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, trust_env=False, timeout=60) as client:

        async def classify(i: int) -> None:
            response = await client.post("/v1/classify", json={"texts": [text(i)]})
            response.raise_for_status()

        async def clients() -> None:
            async def one(c: int) -> None:
                for r in range(ROUNDS):
                    await classify(c * ROUNDS + r)

            await asyncio.gather(*(one(c) for c in range(CLIENTS)))

        total = CLIENTS * ROUNDS
        await clients()  # warm-up
        started = time.perf_counter()
        await clients()
        concurrent = total / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(total):
            await classify(i)
        sequential = total / (time.perf_counter() - started)
    return concurrent, sequential


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-classifier-") as tmp:
        model = build_model(Path(tmp) / "model")
        url, process = serve(model)
        try:
            asyncio.run(wait_ready(url))
            concurrent, sequential = asyncio.run(rates(url))
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(
        f"classifier throughput, {CLIENTS} concurrent clients vs the same requests one at a time",
        concurrent,
        sequential,
        "requests/s",
        goal=">= 3",
        higher_is_better=True,
    )


if __name__ == "__main__":
    main()
