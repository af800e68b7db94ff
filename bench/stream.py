"""Streaming chat overhead: `ChatEngine.stream` vs a bare `model.generate` with the same settings.

Both use the same loaded model (a random 4-layer Llama, hidden 256, built here, with the demo
tokenizer), the same prompt ids (the engine's own chat template output), greedy decoding and the
same number of new tokens. Ours adds the chat template, tokenisation, the generation thread,
TextIteratorStreamer's incremental decoding, the cancel check per step and the Answer's numbers.
REPS alternating pairs after a warm-up; the ratio is the median of the pairs' ratios (a pair runs
back to back, so load from other processes mostly cancels), printed beside both median times.
Goal: ours / bare <= 1.05.

Both run with one intra-op thread. With torch's default (one per core) on a small shared CPU, a
bare `generate` on the main thread spins its OpenMP team against the other processes and ran up
to 6x slower than the same call on a worker thread, which would flatter the streaming path.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.finetune import build_model

REPS, NEW_TOKENS = 15, 200
QUESTION = "Sort the words alphabetically. gpu token model release"


def _bare(loaded: Any, variant: Any) -> float:
    import torch

    from services.chat.local import chat_prompt, generation_kwargs
    from services.chat.session import build_messages

    tokenizer = loaded.tokenizer
    prompt = chat_prompt(tokenizer, build_messages(variant, QUESTION, []))
    started = time.perf_counter()
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = loaded.model.generate(**inputs, **generation_kwargs(variant, tokenizer))
    took = time.perf_counter() - started
    _check(out.shape[1] - inputs["input_ids"].shape[1])
    return took


def _ours(engine: Any, variant: Any) -> float:
    from services.chat.session import collect

    started = time.perf_counter()
    answer = collect(engine.stream(variant, QUESTION))
    took = time.perf_counter() - started
    assert answer.error is None, answer.error
    _check(answer.tokens)
    return took


def _check(tokens: int) -> None:
    assert tokens == NEW_TOKENS, f"generated {tokens} tokens, expected {NEW_TOKENS} (EOS came early)"


def main() -> None:
    import torch

    from services.chat.session import ChatEngine
    from services.chat.variant import Variant

    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp) / "model")
        engine = ChatEngine(cache_dir=Path(tmp) / "hub")
        variant = Variant(name="bench", model=str(model), params={"max_new_tokens": NEW_TOKENS})
        loaded = engine.models.get(variant)
        loaded.model.generation_config.eos_token_id = None  # always NEW_TOKENS tokens, in both
        _ours(engine, variant), _bare(loaded, variant)  # warm-up
        ours, bare = [], []
        for _ in range(REPS):
            ours.append(_ours(engine, variant))
            bare.append(_bare(loaded, variant))
        engine.close()
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
    rates = f"{NEW_TOKENS / ours_s:.0f} vs {NEW_TOKENS / bare_s:.0f} tokens/s"
    print(f"stream: {NEW_TOKENS} new tokens, greedy, {REPS} pairs: median {ours_s:.3f} s vs {bare_s:.3f} s ({rates})")
    print(f"streaming overhead: median pair ratio ours/bare {ratio:.3f} (lower is better; goal <= 1.05)")
