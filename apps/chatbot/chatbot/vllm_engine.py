"""The `vllm` engine's conventions: vLLM's OpenAI server runs as a sidecar on the internal network
and the chatbot is its client (the `openai` engine, `upstream.UpstreamEngine`).

The sidecar serves the base model with the fine-tune's adapter as a LoRA module
(`--enable-lora --lora-modules <name>=<adapter folder>`); a request names the adapter as its
`model`, so the chatbot sends `CHATBOT_UPSTREAM_MODEL`, by default the adapter folder's name, the
name `vllm_command` gives the module. Nothing here imports vLLM: it runs in its own image.

`python -m chatbot.vllm_engine MODEL ADAPTER` prints the sidecar's command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The `--max-lora-rank` values vLLM accepts."""
API_KEY_VARIABLE = "VLLM_API_KEY"
"""vLLM reads its API key from this variable: the key never goes on a command line (`ps` shows those)."""


def lora_name(adapter: Path) -> str:
    """The LoRA module's name for an adapter folder (what the chatbot sends as `model`)."""
    return adapter.name


def max_lora_rank(adapter: Path) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds the adapter's rank (`r` in adapter_config.json)."""
    try:
        rank = json.loads((adapter / "adapter_config.json").read_text()).get("r", 16)
    except (OSError, ValueError, AttributeError):
        rank = 16
    if not isinstance(rank, int) or rank < 1:
        rank = 16
    return next((allowed for allowed in LORA_RANKS if allowed >= rank), LORA_RANKS[-1])


def vllm_command(
    model: Path,
    adapter: Path | None,
    *,
    host: str = "0.0.0.0",  # the sidecar listens on the internal network only
    port: int = 8000,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    served_model_name: str = "base",
) -> list[str]:
    """The sidecar's command: vLLM's OpenAI server for `model`, with `adapter` as a LoRA module
    named `lora_name(adapter)`; its API key comes from `VLLM_API_KEY` in its environment."""
    command = ["vllm", "serve", str(model), "--host", host, "--port", str(port)]
    command += ["--served-model-name", served_model_name, "--gpu-memory-utilization", str(gpu_memory_utilization)]
    if max_model_len is not None:
        command += ["--max-model-len", str(max_model_len)]
    if adapter is not None:
        command += ["--enable-lora", "--lora-modules", f"{lora_name(adapter)}={adapter}"]
        command += ["--max-lora-rank", str(max_lora_rank(adapter))]
    return command


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chatbot.vllm_engine", description=__doc__)
    parser.add_argument("model", type=Path, help="the base model folder, as the sidecar mounts it")
    parser.add_argument("adapter", type=Path, nargs="?", help="the LoRA adapter folder, as the sidecar mounts it")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int)
    args = parser.parse_args(argv)
    command = vllm_command(args.model, args.adapter, port=args.port, max_model_len=args.max_model_len)
    print(shlex.join(command))


if __name__ == "__main__":
    main()
