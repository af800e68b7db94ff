"""Fine-tune throughput: a workbench job vs a plain Trainer + PEFT script, and packing vs padding.

Both train LoRA (r=16, all linear layers) on short instruction rows of uneven length (most under
30 tokens, one in six about 250) with the same model (a
random 4-layer Llama, hidden 256, built here), steps, micro-batch and sequence length, on this
machine's CPU. Tokens/s = non-padding tokens seen / train runtime, as the Trainer reports them.
Goals: workbench / plain >= 0.95; packing / padding >= 1.5.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report

STEPS, BATCH, SEQ = 40, 8, 256


def build_model(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from services.demo import train_tokenizer

    tokenizer = train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def workbench_tokens_per_s(root: Path, model: Path, data: Path, *, packing: bool) -> float:
    from services.finetune import jobs
    from services.finetune.spec import parse_spec
    from services.store import Store

    spec = parse_spec(
        {
            "name": "bench",
            "model": {"id": str(model)},
            "dataset": {"path": str(data), "eval_split": 0},
            "lora": {"r": 16, "alpha": 32, "target_modules": "all-linear"},
            "training": {
                "max_steps": STEPS,
                "micro_batch_size": BATCH,
                "max_seq_length": SEQ,
                "packing": packing,
                "save_every": 10_000,
                "eval_every": 10_000,
                "warmup_ratio": 0,
                "learning_rate": 2e-4,
            },
        },
        source="bench",
    )
    folder = jobs.create_job(spec, data_dir=root, store=Store(root))
    jobs.launch(folder)
    while jobs.read_status(folder).state in jobs.ACTIVE:
        time.sleep(0.5)
    final = [m for m in jobs.read_metrics(folder) if m.get("train_runtime_s")][-1]
    return float(final["tokens_seen"]) / float(final["train_runtime_s"])


def plain_tokens_per_s(model: Path, data: Path) -> float:
    cmd = [sys.executable, "-m", "bench.plain_trainer", str(model), str(data), str(STEPS), str(BATCH), str(SEQ)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["tokens_per_s"])


def mixed_rows(count: int = 2000) -> list[dict[str, str]]:
    """Short instruction rows of uneven length (3 to 60 words), as real SFT data is."""
    import random

    from services.demo import WORDS

    rng = random.Random(0)
    rows = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.choice([3, 4, 5, 6, 8, 60]))]
        rows.append(
            {
                "instruction": "Sort the words alphabetically.",
                "input": " ".join(words),
                "output": " ".join(sorted(words)),
            }
        )
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_model(root / "model")
        data = root / "data.jsonl"
        data.write_text("\n".join(json.dumps(r) for r in mixed_rows()))
        plain = plain_tokens_per_s(model, data)
        ours = workbench_tokens_per_s(root / "ws", model, data, packing=False)
        packed = workbench_tokens_per_s(root / "ws", model, data, packing=True)
    report("fine-tune tokens/s vs plain Trainer+PEFT", ours, plain, "tokens/s", goal=">= 0.95", higher_is_better=True)
    report("packing vs padding tokens/s", packed, ours, "tokens/s", goal=">= 1.5", higher_is_better=True)


if __name__ == "__main__":
    main()
