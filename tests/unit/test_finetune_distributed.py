"""Multi-process and k-bit jobs: the launch config and command, spec refusals, per-rank loading, dtypes."""

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from services.errors import ConfigError
from services.finetune import distributed, training
from services.finetune.merge import merge_dtype
from services.finetune.runner import RankError, error_summary
from services.finetune.spec import JobSpec, gpus_wanted, parse_spec


def spec_with(lora: dict[str, object] | None = None, **training_fields: object) -> JobSpec:
    data: dict[str, object] = {
        "name": "d",
        "model": {"id": "m"},
        "dataset": {"path": "d.jsonl"},
        "lora": lora or {},
        "training": training_fields,
    }
    return parse_spec(data, source="job.toml")


def fsdp_qlora(**extra: object) -> JobSpec:
    return spec_with({"method": "qlora"}, num_processes=2, distributed="fsdp", precision="bf16", **extra)


# ---- the accelerate config and command


def test_cpu_jobs_get_a_torchrun_launch_on_the_cpu() -> None:
    config = distributed.accelerate_config(spec_with(num_processes=2), cuda=False, precision="fp32")
    assert config["use_cpu"] is True and config["num_processes"] == 2
    assert config["distributed_type"] == "MULTI_GPU"  # accelerate's only multi-process local launcher
    assert config["mixed_precision"] == "no" and config["main_process_port"] == 0


def test_fsdp_config_follows_peft_for_lora_and_qlora() -> None:
    config = distributed.accelerate_config(fsdp_qlora(), cuda=True, precision="bf16")
    assert config["distributed_type"] == "FSDP" and config["mixed_precision"] == "bf16"
    fsdp = config["fsdp_config"]
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert fsdp["fsdp_use_orig_params"] is False
    assert fsdp["fsdp_cpu_ram_efficient_loading"] is True and fsdp["fsdp_sync_module_states"] is True
    ddp = distributed.accelerate_config(spec_with(num_processes=2), cuda=True, precision="fp16")
    assert ddp["distributed_type"] == "MULTI_GPU" and ddp["mixed_precision"] == "fp16" and "fsdp_config" not in ddp


@pytest.mark.parametrize("cuda", [False, True])
def test_generated_config_has_only_keys_accelerate_knows(tmp_path: Path, cuda: bool) -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    config = distributed.accelerate_config(fsdp_qlora(), cuda=cuda, precision="bf16")
    loaded = ClusterConfig.from_yaml_file(distributed.write_config(tmp_path, config))  # raises on unknown keys
    assert loaded.num_processes == 2 and loaded.use_cpu is not cuda


@pytest.mark.parametrize("resume", [False, True])
@pytest.mark.parametrize("fields", [{"num_processes": 2}, {"num_processes": 3, "distributed": "fsdp"}])
def test_launch_command_always_names_the_jobs_config(tmp_path: Path, resume: bool, fields: dict[str, Any]) -> None:
    config = distributed.write_config(
        tmp_path, distributed.accelerate_config(spec_with(**fields), cuda=True, precision="bf16")
    )
    command = distributed.launch_command(tmp_path, config, resume=resume)
    assert command[1:5] == ["-m", "accelerate.commands.launch", "--config_file", str(config)]
    tail = ["--module", "services.trainer", str(tmp_path), "--rank", *(["--resume"] if resume else [])]
    assert command[5:] == tail


VALIDATE = """
import json, sys
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
args, _, _ = _validate_launch_command(launch_command_parser().parse_args(sys.argv[1:]))
keys = ["num_processes", "use_deepspeed", "use_fsdp", "multi_gpu", "mixed_precision", "gpu_ids", "use_cpu",
        "fsdp_use_orig_params", "fsdp_state_dict_type"]
print(json.dumps({k: getattr(args, k, None) for k in keys}))
"""


def launch_args(argv: list[str], hf_home: Path) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin", "HF_HOME": str(hf_home), "PYTHONPATH": "."}
    out = subprocess.run([sys.executable, "-c", VALIDATE, *argv], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


HOSTILE = (
    "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\nnum_processes: 8\n"
    "mixed_precision: fp16\ngpu_ids: '7'\nuse_cpu: false\nfsdp_config:\n  fsdp_use_orig_params: true\n"
)
LAUNCHED = {"num_processes": 2, "use_deepspeed": False, "gpu_ids": "all"}


@pytest.mark.training  # accelerate's own launcher in a subprocess: out of `make quick`
@pytest.mark.parametrize(
    ("spec", "cuda", "expected"),
    [
        (spec_with(num_processes=2), False, {"multi_gpu": True, "use_fsdp": False, "use_cpu": True}),
        (
            fsdp_qlora(),
            True,
            {"use_fsdp": True, "fsdp_use_orig_params": False, "fsdp_state_dict_type": "FULL_STATE_DICT"},
        ),
    ],
)
def test_a_hostile_default_accelerate_config_is_ignored(
    tmp_path: Path, spec: JobSpec, cuda: bool, expected: dict[str, Any]
) -> None:
    hf_home = tmp_path / "hf"
    (hf_home / "accelerate").mkdir(parents=True)
    (hf_home / "accelerate" / "default_config.yaml").write_text(HOSTILE)
    bare = launch_args(["--module", "services.trainer", "JOB", "--rank"], hf_home)
    assert bare["use_deepspeed"] is True and bare["num_processes"] == 8  # what a bare `accelerate launch` does
    config = distributed.accelerate_config(spec, cuda=cuda, precision="bf16")
    command = distributed.launch_command(tmp_path, distributed.write_config(tmp_path, config), resume=False)
    args = launch_args(command[3:], hf_home)
    assert args | LAUNCHED | expected == args


# ---- the job file


@pytest.mark.parametrize(
    ("lora", "fields", "message"),
    [
        (None, {"num_processes": 2, "distributed": "deepspeed"}, 'use distributed = "fsdp"'),
        ({"method": "lora-8bit"}, {"num_processes": 2, "distributed": "fsdp"}, 'use lora.method = "qlora" with fsdp'),
        (None, {"num_processes": 4, "gpus": 2}, "training.num_processes = 4 needs a gpu each but training.gpus = 2"),
        (None, {"gpus": 0}, "training.gpus"),
        (None, {"gpus": "some"}, "training.gpus"),
    ],
)
def test_jobs_that_cannot_run_are_refused_when_the_file_loads(
    lora: dict[str, object] | None, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        spec_with(lora, **fields)
    assert message in str(err.value)


def test_gpus_wanted_defaults_to_one_per_process() -> None:
    assert gpus_wanted(spec_with(num_processes=3)) == 3
    assert gpus_wanted(spec_with(num_processes=2, gpus=4)) == 4
    assert gpus_wanted(spec_with(num_processes=2, gpus="all")) == "all"


# ---- loading the model on each rank


def test_kbit_without_fsdp_loads_on_the_ranks_own_gpu() -> None:
    for method in ("qlora", "lora-8bit"):
        spec = spec_with({"method": method}, num_processes=2, precision="bf16")
        assert training.load_kwargs(spec, [], local_rank=1)["device_map"] == {"": 1}
    assert "device_map" not in training.load_kwargs(spec_with(precision="bf16"), [], local_rank=1)


def test_qlora_under_fsdp_stores_4bit_weights_in_the_compute_dtype() -> None:
    kwargs = training.load_kwargs(fsdp_qlora(), [], local_rank=1)
    assert "device_map" not in kwargs and kwargs["dtype"] == torch.bfloat16
    quant = kwargs["quantization_config"]
    assert quant.bnb_4bit_quant_storage == torch.bfloat16 and quant.bnb_4bit_compute_dtype == torch.bfloat16
    plain = training.load_kwargs(spec_with({"method": "qlora"}, precision="fp16"), [], local_rank=0)
    assert plain["quantization_config"].bnb_4bit_quant_storage == torch.uint8


class FakeBase:
    def __init__(self) -> None:
        self.input_grads = False

    def enable_input_require_grads(self) -> None:
        self.input_grads = True


def test_kbit_preparation_casts_nothing_under_fsdp(monkeypatch: pytest.MonkeyPatch) -> None:
    import peft

    calls: list[dict[str, Any]] = []

    def prepare(base: object, **kwargs: Any) -> object:
        calls.append(kwargs)
        return base

    monkeypatch.setattr(peft, "prepare_model_for_kbit_training", prepare)
    base = FakeBase()
    assert (
        training._prepare_kbit(fsdp_qlora(gradient_checkpointing=True), base) is base
        and base.input_grads
        and calls == []
    )
    training._prepare_kbit(spec_with({"method": "qlora"}, gradient_checkpointing=True), FakeBase())
    assert calls == [{"use_gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}]


def test_gradient_checkpointing_is_non_reentrant(tmp_path: Path) -> None:
    args = training.training_arguments(spec_with(gradient_checkpointing=True), tmp_path, evaluate=False)
    assert args.activation_checkpointing and args.activation_checkpointing_kwargs == {"use_reentrant": False}


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp16")])
def test_auto_precision_never_picks_emulated_bf16(monkeypatch: pytest.MonkeyPatch, native: bool, expected: str) -> None:
    monkeypatch.setattr(training, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or native)
    assert training.resolve_precision(spec_with()) == expected


@pytest.mark.parametrize(
    ("method", "precision", "dtype"),
    [
        ("qlora", "bf16", "bfloat16"),
        ("qlora", None, "bfloat16"),
        ("lora-8bit", "fp16", "float16"),
        ("lora", "bf16", "float32"),
    ],
)
def test_merge_keeps_a_kbit_adapters_training_dtype(method: str, precision: str | None, dtype: str) -> None:
    manifest: dict[str, Any] = {"job": {"lora": {"method": method}}}
    if precision:
        manifest["precision"] = precision
    assert merge_dtype(manifest) == dtype


# ---- stopping together, failing clearly


def _stop_rank(rank: int, store: str, results: str) -> None:
    import torch.distributed as dist

    from services.finetune.worker import stop_requested

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    stop = threading.Event()
    if rank == 0:
        stop.set()
    Path(results, str(rank)).write_text(str(stop_requested(stop)))
    dist.destroy_process_group()


@pytest.mark.training  # two gloo ranks in processes of their own: out of `make quick`
def test_a_stop_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    (tmp_path / "out").mkdir()
    mp.spawn(  # type: ignore[attr-defined]
        _stop_rank, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2
    )
    assert [(tmp_path / "out" / r).read_text() for r in ("0", "1")] == ["True", "True"]
    from services.finetune.worker import stop_requested

    assert stop_requested(threading.Event()) is False  # one process: its own flag


def test_a_failed_ranks_error_is_the_jobs_error(tmp_path: Path) -> None:
    (tmp_path / distributed.RANKS).mkdir()
    distributed.write_rank_error(tmp_path, 1, RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    kind, message = distributed.rank_error(tmp_path) or ("", "")
    assert error_summary(RankError(kind, message), 7).startswith("CUDA out of memory at step 7: try")
    assert error_summary(RankError("ValueError", "bad row"), 3) == "ValueError at step 3: bad row"
