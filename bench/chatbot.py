"""Chatbot end-to-end latency for a short completion vs `model.generate` in-process, same settings.

Ours: the app (apps/chatbot) served by uvicorn in a process of its own, as deployed, on loopback,
asked through the official OpenAI client (HTTP, auth, metrics, JSON logs, the batching engine).
Peer: the same base model with the same adapter merged, the same rendered chat prompt,
`model.generate` greedy with the same token budget, in this process. The two alternate, request by
request, so load from other processes falls on both alike; both use torch's default threads.
Goal (the serving issue): <= 1.10x.

Throughput: CLIENTS different questions of MAX_TOKENS tokens each, sent by CLIENTS concurrent
clients (the engine gathers them into batched `generate` calls) vs the same requests one at a
time, completion tokens/s through the same app. Goal: >= 4x. Measured without retrieval, and with
the demo collection (streamed, as bench/serving.py asks it through the deployed replicas):
questions are embedded and looked up in batches too.

Each server runs in its own process: in one process with the peer, two torch thread teams (the
peer's and the engine's) share the two cores and slow each other down by up to a third.
`python -m bench chatbot`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appkit.readiness import freeze_heap  # the load generator's too: a full collection of it took ~330 ms

from bench.common import report, serve_app

MAX_TOKENS = 32
RUNS = 15
QUESTION = "How do I request GPU time for a fine-tune?"
CLIENTS = 16
DOCUMENTS = Path(__file__).parents[1] / "services" / "demo_data" / "documents"
TOPICS = ["GPU time", "a rollback", "the ingest", "an adapter", "a release", "the budget", "a deploy", "the keys"]


def make_adapter(model: Path, folder: Path) -> None:
    import torch
    from appkit.adapters import peft_warnings_understood
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(7)
    lora = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
    )
    with peft_warnings_understood():
        get_peft_model(AutoModelForCausalLM.from_pretrained(model), lora).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(model).save_pretrained(folder)


def serve(model: Path, adapter: Path, collection: Path | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """The chatbot in a uvicorn process of its own, as deployed (retrieving from `collection` when given)."""
    env = {
        "CHATBOT_MODEL_PATH": str(model),
        "CHATBOT_ADAPTER_PATH": str(adapter),
        "CHATBOT_API_KEYS": "bench-key",
        "CHATBOT_LOG_LEVEL": "WARNING",
    }
    if collection is not None:
        env["CHATBOT_COLLECTION_PATH"] = str(collection)
    return serve_app("chatbot", env)


def wait_ready(url: str) -> None:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if opener.open(f"{url}/readyz", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the chatbot did not become ready")


def demo_collection(folder: Path) -> Path:
    """The demo documents ingested into collection `demo-docs` (the workbench's default model and chunking)."""
    from services.rag.chroma import persistent_client
    from services.rag.ingest import ingest
    from workbench.config.schema import RagSettings

    rag = RagSettings()
    client = persistent_client(folder / "chroma")
    ingest(client, [DOCUMENTS], collection="demo-docs", model_id=rag.embedding_model, cache_dir=folder / "hub",
           chunk_size=rag.chunk_size, overlap=rag.overlap)  # fmt: skip
    return folder / "chroma"


def system_prompt(model: Path) -> str:
    """The chatbot's default system prompt (the peer renders the same prompt)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "apps" / "chatbot"))
    from chatbot.settings import Settings

    return Settings(model_path=model, api_keys="x").system_prompt  # type: ignore[call-arg]


class Peer:
    """`model.generate` in this process: the merged model, the chatbot's rendered prompt, greedy."""

    def __init__(self, model: Path, adapter: Path, system: str) -> None:
        from appkit.adapters import apply_adapter
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.lm = apply_adapter(AutoModelForCausalLM.from_pretrained(model), adapter, merge=True)  # as the chatbot does
        self.lm.eval()
        tokenizer = AutoTokenizer.from_pretrained(adapter)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        self.inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def generate(self) -> tuple[float, int]:
        """Seconds and completion tokens of one generation."""
        import torch

        started = time.perf_counter()
        with torch.inference_mode():
            ids = self.lm.generate(**self.inputs, max_new_tokens=MAX_TOKENS, do_sample=False, pad_token_id=self.pad)
        return time.perf_counter() - started, int(ids.shape[1] - self.inputs["input_ids"].shape[1])


def latencies(url: str, peer: Peer) -> tuple[list[float], list[float], int, int]:
    """Seconds of RUNS requests through the OpenAI client and of RUNS peer generations, alternating
    (after two warm-up rounds), with the completion tokens of each."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="bench-key")
    freeze_heap()
    ours, theirs, tokens, peer_tokens = [], [], 0, 0
    for _ in range(RUNS + 2):
        started = time.perf_counter()
        answer = client.chat.completions.create(
            model="chatbot", messages=[{"role": "user", "content": QUESTION}], max_tokens=MAX_TOKENS, temperature=0
        )
        ours.append(time.perf_counter() - started)
        tokens = answer.usage.completion_tokens if answer.usage else 0
        seconds, peer_tokens = peer.generate()
        theirs.append(seconds)
    client.close()
    return ours[2:], theirs[2:], tokens, peer_tokens


def throughput(url: str, *, stream: bool = False) -> tuple[float, float]:
    """Completion tokens/s of CLIENTS requests sent concurrently, and sent one at a time."""
    import asyncio

    from openai import AsyncOpenAI

    freeze_heap()

    questions = [f"What should I know about {TOPICS[i % len(TOPICS)]} (case {i})?" for i in range(CLIENTS)]

    async def ask(client: AsyncOpenAI, question: str) -> int:
        messages = [{"role": "user", "content": question}]
        if not stream:
            answer = await client.chat.completions.create(
                model="chatbot",
                messages=messages,
                max_tokens=MAX_TOKENS,
                temperature=0,  # type: ignore[arg-type]
            )
            return answer.usage.completion_tokens if answer.usage else 0
        chunks = await client.chat.completions.create(
            model="chatbot", messages=messages, max_tokens=MAX_TOKENS, temperature=0,  # type: ignore[arg-type]
            stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        tokens = 0
        async for chunk in chunks:
            tokens = chunk.usage.completion_tokens if chunk.usage else tokens
        return tokens

    async def rates() -> tuple[float, float]:
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key="bench-key", max_retries=0)
        await asyncio.gather(*(ask(client, q) for q in questions))  # warm-up
        started = time.perf_counter()
        tokens = sum(await asyncio.gather(*(ask(client, q) for q in questions)))
        concurrent = tokens / (time.perf_counter() - started)
        started = time.perf_counter()
        tokens = 0
        for question in questions:
            tokens += await ask(client, question)
        sequential = tokens / (time.perf_counter() - started)
        await client.close()
        return concurrent, sequential

    return asyncio.run(rates())


def main() -> None:
    from services.demo import build_tiny_llama

    with tempfile.TemporaryDirectory(prefix="bench-chatbot-") as tmp:
        model = build_tiny_llama(Path(tmp) / "model")
        adapter = Path(tmp) / "adapter"
        make_adapter(model, adapter)
        url, server = serve(model, adapter)
        rag_url, rag_server = serve(model, adapter, demo_collection(Path(tmp) / "rag"))
        try:
            wait_ready(url)
            wait_ready(rag_url)
            ours, peer, tokens, peer_tokens = latencies(url, Peer(model, adapter, system_prompt(model)))
            concurrent, sequential = throughput(url)
            rag_concurrent, rag_sequential = throughput(rag_url, stream=True)
        finally:
            for process in (server, rag_server):
                process.terminate()
                process.wait(30)
    print(f"completion tokens: chatbot {tokens}, model.generate {peer_tokens} (greedy, max {MAX_TOKENS})")
    overhead_ms = (statistics.median(ours) - statistics.median(peer)) * 1000
    pairs = statistics.median(a / b for a, b in zip(ours, peer, strict=True))
    print(f"fixed overhead per request (HTTP, auth, JSON, streaming): {overhead_ms:.1f} ms; median of the "
          f"{RUNS} alternating pairs' ratios {pairs:.2f}")  # fmt: skip
    print(f"  ours (ms): {[round(x * 1000, 1) for x in ours]}\n  peer (ms): {[round(x * 1000, 1) for x in peer]}")
    report(f"chatbot latency, median of {RUNS} short completions (alternating with the peer)",
           statistics.median(ours), statistics.median(peer), "s", goal="<= 1.10", higher_is_better=False)  # fmt: skip
    report(f"chatbot throughput, {CLIENTS} concurrent clients vs the same requests one at a time",
           concurrent, sequential, "completion tokens/s", goal=">= 4", higher_is_better=True)  # fmt: skip
    report(f"chatbot throughput with retrieval (demo collection, streamed), {CLIENTS} concurrent vs one at a time",
           rag_concurrent, rag_sequential, "completion tokens/s", goal=">= 4", higher_is_better=True)  # fmt: skip


if __name__ == "__main__":
    main()
