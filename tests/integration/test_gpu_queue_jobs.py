"""Real fine-tunes from two workspaces through one machine queue (`workbench server init`): the
second waits while the first holds the only GPU, everyone sees who holds it with an ETA, and the
trainer's ranks get the GPU it was given."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.demo import DemoWorkspace, init_demo
from services.finetune import jobs
from services.finetune.spec import JobSpec, parse_spec
from services.gpuqueue.queue import GpuQueue, QueueView
from tests.fakes import gpus as fakes
from tests.integration.finetune_support import start
from workbench.cli.main import cli

fake_gpus = fakes.fake_gpus
GPU0 = fakes.gpu(0)["uuid"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    root = tmp_path_factory.mktemp("demo")
    return init_demo(cache_dir=root / "hub", data_dir=root / "data")


def spec(demo: DemoWorkspace, name: str, steps: int) -> JobSpec:
    data = {
        "name": name,
        "model": {"id": demo.model},
        "dataset": {"path": demo.dataset, "eval_split": 0},
        "lora": {"r": 4},
        "training": {"max_steps": steps, "save_every": 1000, "micro_batch_size": 2, "max_seq_length": 64},
    }
    return parse_spec(data, source="test")


def until(check: object, folder: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, (folder / "train.log").read_text()[-3000:]
        time.sleep(0.3)


def view(state_dir: Path, tmp_path: Path) -> QueueView:
    return GpuQueue.for_workspace(tmp_path / "onlooker", state_dir).view()


def test_a_second_workspace_waits_for_the_gpu_and_sees_the_holder_with_its_eta(
    demo: DemoWorkspace, tmp_path: Path, fake_gpus: fakes.FakeGpus
) -> None:
    fake_gpus([fakes.gpu(0)])
    state_dir = tmp_path / "llm-workbench"
    assert CliRunner().invoke(cli, ["server", "init", "--state-dir", str(state_dir), "--group", "root"]).exit_code == 0
    first = start(demo, tmp_path / "alice", spec(demo, "long-job", 100_000), state_dir=state_dir)
    until(lambda: jobs.read_status(first).state == "running", first)
    second = start(demo, tmp_path / "bob", spec(demo, "short-job", 3), state_dir=state_dir)
    until(lambda: [e.name for e in view(state_dir, tmp_path).waiting] == ["short-job"], second)
    until(lambda: view(state_dir, tmp_path).slots[0][1][0].eta_s is not None, first, timeout=30)
    shown = view(state_dir, tmp_path)
    assert shown.folder.shared
    [(slot, [holder])] = shown.slots
    assert (slot.id, holder.name, holder.state) == (GPU0, "long-job", "running") and holder.progress is not None
    assert jobs.read_status(second).state == "queued"  # it never started beside the first job
    assert f"queue: holding {GPU0}" in (first / "train.log").read_text()
    jobs.cancel(first, grace_s=60)
    until(lambda: jobs.read_status(second).state not in jobs.ACTIVE, second)
    assert jobs.read_status(second).state == "completed", jobs.read_status(second).error
    assert f"queue: holding {GPU0}" in (second / "train.log").read_text()
    assert jobs.read_status(first).state == "cancelled"
    after = view(state_dir, tmp_path)
    assert after.slots[0][1] == [] and after.waiting == []
    assert after.usage["root"] > 5.0  # the first job's GPU time now counts against its user
