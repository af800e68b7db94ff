"""Classifier throughput: CLIENTS concurrent clients vs the same requests one at a time.

The app (apps/classifier) on a demo-sized sequence-classification Llama (the demo model's config
and tokenizer, two labels, random weights), served by uvicorn in a process of its own and asked
over HTTP with one text per request. Ours: CLIENTS clients each sending ROUNDS requests back to
back, so the service gathers their texts into shared forward passes. Peer: the same requests
sent one at a time to the same server, by the same minimal keep-alive client (`Connection`: httpx's
CPU per request was the bottleneck). Goal (the batching issue): >= 3x. `python -m bench classifier`.

The server runs with one intra-op thread (OMP_NUM_THREADS=1), as bench/stream.py does: on a small
shared CPU, torch's default OpenMP team spins against the other processes and a one-text forward
pass took 125 ms instead of 1.5 ms, which would make the one-at-a-time peer look far worse.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path

from appkit.readiness import freeze_heap  # the load generator's too: a full collection of it took ~330 ms

from bench.common import report, serve_app

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
    """The classifier in a uvicorn process of its own, one intra-op thread."""
    env = {
        "CLASSIFIER_MODEL_PATH": str(model),
        "CLASSIFIER_API_KEYS": KEY,
        "CLASSIFIER_LOG_LEVEL": "WARNING",
        "OMP_NUM_THREADS": "1",
    }
    return serve_app("classifier", env)


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


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: a load generator light enough to leave the
    two cores to the server (httpx spends ~3 ms of CPU per request here, more than the server does,
    so with it the figure measured the client; the peer uses this same client)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)), host)

    async def post(self, path: str, body: object) -> dict[str, object]:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        status, *headers = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        length = next(int(h.split(":")[1]) for h in headers if h.lower().startswith("content-length:"))
        answer = json.loads(await self.reader.readexactly(length))
        if not status.startswith("HTTP/1.1 200"):
            raise RuntimeError(f"{status}: {answer}")
        return dict(answer)

    def close(self) -> None:
        self.writer.close()


async def rates(url: str) -> tuple[float, float]:
    """Requests/s with CLIENTS concurrent clients (a connection each), and one at a time."""
    connections = [await Connection.open(url) for _ in range(CLIENTS)]

    async def classify(connection: Connection, i: int) -> None:
        answer = await connection.post("/v1/classify", {"texts": [text(i)]})
        assert len(answer["results"]) == 1  # type: ignore[arg-type]

    async def clients() -> None:
        async def one(c: int) -> None:
            for r in range(ROUNDS):
                await classify(connections[c], c * ROUNDS + r)

        await asyncio.gather(*(one(c) for c in range(CLIENTS)))

    total = CLIENTS * ROUNDS
    await clients()  # warm-up
    started = time.perf_counter()
    await clients()
    concurrent = total / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(total):
        await classify(connections[0], i)
    sequential = total / (time.perf_counter() - started)
    for connection in connections:
        connection.close()
    return concurrent, sequential


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-classifier-") as tmp:
        model = build_model(Path(tmp) / "model")
        url, process = serve(model)
        try:
            asyncio.run(wait_ready(url))
            freeze_heap()
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
