"""The fit estimate against cases computed by hand (see the formula in services/fit.py)."""

import pytest

from services.fit import (
    RUNTIME_OVERHEAD,
    Device,
    ModelShape,
    Workload,
    activation_bytes,
    assigned_device,
    estimate,
    estimate_on_host,
    inference_bytes,
    kbit_upcast_bytes,
    kv_cache_bytes,
    lora_params,
    shape_or_none,
    training_bytes,
    weight_bytes,
)
from services.gpu import Gpu

# h=1000, L=10, i=2000, kv=500, V=10000, tied: E = 10,000 * 1,000 = 10,000,000
SHAPE = ModelShape(params=100_000_000, layers=10, hidden=1000, intermediate=2000, kv_width=500, vocab=10_000)
WORK = Workload(seq_len=100, batch_size=2, lora_rank=8, gradient_checkpointing=True)


def test_weights_at_each_precision() -> None:
    assert weight_bytes(SHAPE, 16) == 200_000_000
    # 8-bit: 1 byte for the 90M quantised weights + 2 bytes for the 10M embedding weights
    assert weight_bytes(SHAPE, 8) == 90_000_000 + 20_000_000
    # NF4: 0.515875 bytes (4.127 bits) for 90M weights = 46,428,750 + 20M embeddings
    assert weight_bytes(SHAPE, 4) == 46_428_750 + 20_000_000


def test_kv_cache_and_inference() -> None:
    # 2 (K,V) * 10 layers * 500 kv width * 100 tokens * 2 batch * 2 bytes
    assert kv_cache_bytes(SHAPE, WORK) == 4_000_000
    # weights + kv + 4*200 tokens*1000*2 bytes + 2 batch*10000 vocab*4 bytes + overhead
    assert inference_bytes(SHAPE, WORK, 16) == 200_000_000 + 4_000_000 + 1_600_000 + 80_000 + RUNTIME_OVERHEAD


def test_lora_training_with_and_without_checkpointing() -> None:
    # r * L * (9h + 2kv + 3i) = 8 * 10 * 16,000
    assert lora_params(SHAPE, 8) == 1_280_000
    optimiser = 16 * 1_280_000
    logits = 2 * 100 * 10_000 * 4 * 2
    checkpointed = 10 * 200 * 1000 * 2 + 200 * 34 * 1000  # layer inputs + one layer rebuilt
    assert training_bytes(SHAPE, WORK, 16) == 200_000_000 + optimiser + checkpointed + logits + RUNTIME_OVERHEAD
    no_ckpt = Workload(seq_len=100, batch_size=2, lora_rank=8, gradient_checkpointing=False)
    stored = 10 * 200 * 34 * 1000
    assert training_bytes(SHAPE, no_ckpt, 16) == 200_000_000 + optimiser + stored + logits + RUNTIME_OVERHEAD


def test_llama2_7b_parameter_count_from_config() -> None:
    config = {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "intermediate_size": 11008,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
    }
    assert ModelShape.from_config(config).params == 6_738_415_616  # the published count


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(1_000_000_000, "fits"), (900_000_000, "tight"), (700_000_000, "does not fit")],
)
def test_verdicts_against_device_memory(memory: int, expected: str) -> None:
    # LoRA bf16 needs 784,150,912 bytes: 78 % of 1 GB fits, 87 % of 900 MB is tight, 700 MB is short
    fit = estimate(SHAPE, Device("test", memory, cuda=True), WORK)
    lora = next(r for r in fit.rows if r.scenario == "LoRA bf16")
    assert lora.bytes == 784_150_912
    assert lora.verdict == expected


def test_kbit_rows_need_cuda_and_badge_takes_the_lightest_runnable() -> None:
    fit = estimate(SHAPE, Device("CPU RAM", 10**12, cuda=False), WORK)
    verdicts = {r.scenario: r.verdict for r in fit.rows}
    assert verdicts["QLoRA 4-bit"] == "needs CUDA"
    assert verdicts["inference bf16"] == "fits"
    assert fit.badge() == "fits"
    tiny = estimate(SHAPE, Device("small", 10, cuda=False), WORK)
    assert tiny.badge() == "does not fit"


def test_shape_or_none_tolerates_configs_without_dimensions() -> None:
    assert shape_or_none(None, 10) is None
    assert shape_or_none({"model_type": "bert-ish"}, 10) is None
    assert shape_or_none({"hidden_size": 8, "num_hidden_layers": 1}, 123) is not None


LLAMA3_8B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def test_qlora_counts_the_fp32_cast_of_embeddings_head_and_norms_on_llama3_8b() -> None:
    shape = ModelShape.from_config(LLAMA3_8B)
    assert shape.params == 8_030_261_248  # the published count
    # prepare_model_for_kbit_training: embeddings + head (2 * 128256 * 4096) and 65 norms of 4096, bf16 -> fp32
    assert kbit_upcast_bytes(shape) == 2 * (2 * 128256 * 4096 + 65 * 4096) == 2_101_878_784
    work = Workload(seq_len=2048, batch_size=1, lora_rank=16)
    plain = weight_bytes(shape, 4) + 16 * lora_params(shape, 16) + activation_bytes(shape, work)
    logits = 2048 * 128256 * 4 * 2
    assert training_bytes(shape, work, 4) == plain + logits + 2_101_878_784 + RUNTIME_OVERHEAD
    assert training_bytes(shape, work, 8) - weight_bytes(shape, 8) == training_bytes(shape, work, 4) - weight_bytes(
        shape, 4
    )
    assert (
        training_bytes(shape, work, 16)
        == 2 * shape.params + 16 * lora_params(shape, 16) + activation_bytes(shape, work) + logits + RUNTIME_OVERHEAD
    )  # no cast without quantisation


def test_assigned_device_is_the_least_free_of_the_most_free_devices() -> None:
    gib = 1024**3
    gpus = [
        Gpu(0, "NVIDIA H200", 141 * gib, 10 * gib, uuid="GPU-a"),
        Gpu(1, "NVIDIA H200", 141 * gib, 120 * gib, uuid="GPU-b"),
        Gpu(2, "NVIDIA H200", 141 * gib, 100 * gib, uuid="GPU-c"),
    ]
    one = assigned_device(gpus, 1)
    assert (one.memory_bytes, one.cuda) == (120 * gib, True) and "GPU 1" in one.name
    two = assigned_device(gpus, 2)
    assert two.memory_bytes == 100 * gib and two.name == "2× NVIDIA H200 · GPU 1, 2 free"
    assert assigned_device([], 1).cuda is False


def test_estimate_on_host_uses_the_largest_gpu() -> None:
    gib = 1024**3
    gpus = [Gpu(0, "small", 8 * gib, 8 * gib), Gpu(1, "big", 80 * gib, 1 * gib)]
    fit = estimate_on_host(LLAMA3_8B, None, gpus=gpus)
    assert fit is not None and fit.device == Device("big", 80 * gib, cuda=True)
