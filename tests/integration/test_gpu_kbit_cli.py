"""`workbench finetune run` refuses k-bit LoRA where it cannot run, with the same words as `plan`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.demo import DemoWorkspace, init_demo
from services.finetune.spec import dump_spec, parse_spec
from tests.fakes import gpus as fakes
from tests.fakes.gpus import FakeGpus, gpu
from workbench.cli.main import cli

fake_gpus = fakes.fake_gpus  # the fixture


@pytest.fixture
def demo(tmp_path: Path) -> DemoWorkspace:
    return init_demo(cache_dir=tmp_path / "hub", data_dir=tmp_path / "data")


def environ(demo: DemoWorkspace) -> dict[str, str]:
    root = Path(demo.cache_dir).parent
    return {
        "WORKBENCH_HUB__CACHE_DIR": demo.cache_dir,
        "WORKBENCH_WORKSPACE__DATA_DIR": str(root / "data"),
        "WORKBENCH_HUB__ENDPOINT": "http://127.0.0.1:9",
        "HF_HUB_OFFLINE": "1",
        "XDG_CONFIG_HOME": str(root / "config"),
    }


def qlora_job(demo: DemoWorkspace, method: str) -> Path:
    spec = parse_spec(
        {"name": "k", "model": {"id": demo.model}, "dataset": {"path": demo.dataset}, "lora": {"method": method}},
        source="test",
    )
    out = Path(demo.dataset).with_name(f"{method}.toml")
    out.write_text(dump_spec(spec))
    return out


@pytest.mark.parametrize("method", ["qlora", "lora-8bit"])
def test_run_refuses_kbit_without_bitsandbytes_like_plan(
    demo: DemoWorkspace, fake_gpus: FakeGpus, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    import torch

    fake_gpus([gpu(0)])  # plan sees a GPU through nvidia-smi
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # run sees CUDA through torch
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # not installed, on every machine
    job, env = qlora_job(demo, method), environ(demo)
    plan = CliRunner().invoke(cli, ["finetune", "plan", str(job)], env=env)
    run = CliRunner().invoke(cli, ["finetune", "run", str(job)], env=env)
    expected = f'lora.method = "{method}" needs bitsandbytes: pip install "llm-workbench[gpu]"'
    assert plan.exit_code == 1 and expected in plan.output, plan.output
    assert run.exit_code == 2 and expected in run.output, run.output
    assert not (Path(env["WORKBENCH_WORKSPACE__DATA_DIR"]) / "jobs").exists()  # no job folder made


def test_run_refuses_kbit_without_cuda(demo: DemoWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = CliRunner().invoke(cli, ["finetune", "run", str(qlora_job(demo, "qlora"))], env=environ(demo))
    assert run.exit_code == 2 and 'lora.method = "qlora" needs a CUDA GPU' in run.output
