"""GPU check: detection through NVML and nvidia-smi, and the fit estimate against measured peaks.

Runs on a CUDA machine (the lent H100/H200): builds a randomly initialised model with a real
~1B Llama architecture (Llama-3.2-1B dimensions) directly on the GPU, then measures peak memory
for bf16 inference and for LoRA bf16 training steps with and without gradient checkpointing,
and prints each beside `services.fit`'s estimate. Measured = peak reserved by PyTorch + the
CUDA context (NVML's used memory before the first allocation). Without CUDA it prints what it
detected and stops.
"""

from __future__ import annotations

import time

from services.fit import ModelShape, Workload, inference_bytes, training_bytes
from services.gpu import _nvml_devices, _smi_devices, describe, detect_gpus

LLAMA_1B = {
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 8192,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
    "head_dim": 64,
}
GIB = 1024**3


def main() -> None:
    print("nvml:", _nvml_devices())
    print("nvidia-smi:", _smi_devices())
    print("status bar:", describe(detect_gpus()))
    import torch

    if not torch.cuda.is_available():
        print("no CUDA: fit check skipped")
        return
    context = _context_bytes()
    shape = ModelShape.from_config(LLAMA_1B)
    print(f"shape: {shape.params / 1e9:.3f} B parameters; CUDA context {context / GIB:.2f} GiB")
    model = _model()
    print(f"model params (torch): {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B")
    work = Workload(seq_len=2048, batch_size=1, lora_rank=16)
    rows = [("inference bf16", inference_bytes(shape, work, 16), _inference_peak(model, work) + context)]
    for ckpt in (True, False):
        w = Workload(seq_len=2048, batch_size=1, lora_rank=16, gradient_checkpointing=ckpt)
        peak, model = _lora_peak(model, w)
        rows.append((f"LoRA bf16 ckpt={ckpt}", training_bytes(shape, w, 16), peak + context))
    print(f"{'scenario':<24}{'estimate GiB':>14}{'measured GiB':>14}{'error':>8}")
    for name, est, measured in rows:
        print(f"{name:<24}{est / GIB:>14.2f}{measured / GIB:>14.2f}{(est - measured) / measured:>8.1%}")


def _context_bytes() -> int:
    import pynvml
    import torch

    torch.cuda.init()
    torch.zeros(1, device="cuda")
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    used = pynvml.nvmlDeviceGetMemoryInfo(handle).used
    return int(used - torch.cuda.memory_reserved())


def _model():  # type: ignore[no-untyped-def]
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**LLAMA_1B, max_position_embeddings=4096)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    return model


def _inference_peak(model, work: Workload) -> int:  # type: ignore[no-untyped-def]
    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    ids = torch.randint(0, 1000, (work.batch_size, work.seq_len - 16), device="cuda")
    started = time.perf_counter()
    with torch.no_grad():
        model.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=0)
    print(f"  generate: {time.perf_counter() - started:.2f} s")
    return int(torch.cuda.max_memory_reserved())


def _lora_peak(model, work: Workload):  # type: ignore[no-untyped-def]
    import torch
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(model, LoraConfig(r=work.lora_rank, lora_alpha=32, target_modules="all-linear"))
    if work.gradient_checkpointing:
        lora.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lora.enable_input_require_grads()
    optimiser = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-4)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    ids = torch.randint(0, 1000, (work.batch_size, work.seq_len), device="cuda")
    started = time.perf_counter()
    for _ in range(2):
        loss = lora(input_ids=ids, labels=ids).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    tokens_per_s = 2 * ids.numel() / (time.perf_counter() - started)
    print(f"  LoRA ckpt={work.gradient_checkpointing}: {tokens_per_s:.0f} tokens/s (incl. warm-up)")
    peak = int(torch.cuda.max_memory_reserved())
    if work.gradient_checkpointing:
        lora.gradient_checkpointing_disable()
    del optimiser
    return peak, lora.unload()  # the plain base model again, for the next scenario


if __name__ == "__main__":
    main()
