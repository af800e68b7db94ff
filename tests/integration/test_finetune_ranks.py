"""Two-process jobs on the CPU: the parent takes the GPUs once, `accelerate launch` starts two gloo ranks."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from services.demo import DemoWorkspace, init_demo
from services.finetune import distributed, jobs
from services.finetune.spec import JobSpec, parse_spec
from services.store import Store
from tests.integration.finetune_support import start, wait


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    root = tmp_path_factory.mktemp("demo")
    return init_demo(cache_dir=root / "hub", data_dir=root / "data")


@pytest.fixture(autouse=True)
def _hostile_accelerate_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user default config that would launch DeepSpeed on 8 GPUs: the job's own config must win."""
    folder = tmp_path / "hf-home" / "accelerate"
    folder.mkdir(parents=True)
    (folder / "default_config.yaml").write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\nnum_processes: 8\nmixed_precision: fp16\n"
    )
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def spec_for(demo: DemoWorkspace, **training: object) -> JobSpec:
    data: dict[str, object] = {
        "name": "ranks",
        "model": {"id": demo.model},
        "dataset": {"path": demo.dataset, "eval_split": 0.1},
        "lora": {"r": 4},
        "training": {
            "num_processes": 2,
            "max_steps": 4,
            "save_every": 100,
            "eval_every": 2,
            "micro_batch_size": 2,
            "max_seq_length": 64,
            **training,
        },
    }
    return parse_spec(data, source="test")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:  # reaped
        return False
    return state != "Z"


def test_two_ranks_train_once_and_save_one_adapter(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = start(demo, tmp_path, spec_for(demo))
    status = wait(folder)
    assert status.state == "completed", (status.error, (folder / "train.log").read_text()[-3000:])
    assert status.step == status.max_steps == 4
    assert len(distributed.rank_pids(folder)) == 2  # two ranks really ran
    steps = [m["step"] for m in jobs.read_metrics(folder) if m.get("loss") is not None]
    assert steps == [1, 2, 3, 4]  # one stream: each step once
    assert sum(1 for m in jobs.read_metrics(folder) if m.get("eval_loss") is not None) == 2
    config = (folder / distributed.CONFIG_NAME).read_text()
    assert "use_cpu: true" in config and "num_processes: 2" in config
    adapter = folder / "adapter"
    assert sorted(p.name for p in adapter.iterdir() if p.name.startswith("adapter_")) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert not (adapter / "training_args.bin").exists()
    assert json.loads((adapter / "manifest.json").read_text())["precision"] == "fp32"
    with Store(tmp_path).connect() as db:  # registered once, by the parent
        rows = db.execute("SELECT name, version FROM artifacts").fetchall()
    assert [tuple(r) for r in rows] == [("ranks", folder.name)]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(demo.model_path), adapter)


def test_cancel_stops_both_ranks_at_one_checkpoint(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = start(demo, tmp_path, spec_for(demo, max_steps=100_000, eval_every=100_000))
    deadline = time.monotonic() + 180
    while jobs.read_status(folder).step < 2:
        assert time.monotonic() < deadline, (folder / "train.log").read_text()[-3000:]
        time.sleep(0.1)
    ranks = distributed.rank_pids(folder)
    stopped = jobs.cancel(folder, grace_s=120)
    assert stopped.state == "cancelled", stopped.error
    assert stopped.error is None  # stopped cleanly, not forced
    assert len(ranks) == 2 and not any(alive(pid) for pid in ranks)
    checkpoints = list((folder / "checkpoints").glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == [f"checkpoint-{stopped.step}"]  # one step for both ranks
    assert (checkpoints[0] / "adapter_model.safetensors").is_file() and not (folder / "adapter").exists()
    jobs.resume(folder, cache_dir=Path(demo.cache_dir))  # the ranks continue from that checkpoint
    while jobs.read_status(folder).step < stopped.step + 2:
        assert time.monotonic() < deadline, (folder / "train.log").read_text()[-3000:]
        time.sleep(0.1)
    assert jobs.cancel(folder, grace_s=120).state == "cancelled"
    logged = [m["step"] for m in jobs.read_metrics(folder) if m.get("loss") is not None]
    assert logged == list(range(1, len(logged) + 1))  # each step once, no restart at 1


def test_a_killed_trainer_leaves_no_rank_behind(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = start(demo, tmp_path, spec_for(demo, max_steps=100_000, eval_every=100_000))
    deadline = time.monotonic() + 180
    while len(distributed.rank_pids(folder)) < 2 or jobs.read_status(folder).step < 1:
        assert time.monotonic() < deadline, (folder / "train.log").read_text()[-3000:]
        time.sleep(0.1)
    parent = jobs.read_status(folder).pid
    assert parent is not None and b"services.trainer" in Path(f"/proc/{parent}/cmdline").read_bytes()
    ranks = distributed.rank_pids(folder)
    os.killpg(parent, signal.SIGKILL)  # what a forced cancel does: parent and launcher die, no signal reaches a rank
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in ranks):  # the kernel kills the ranks with their launcher
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The parent's SIGKILL lands when it leaves the kernel (a disk write under load): seen once it has.
    while (status := jobs.read_status(folder)).state == "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert "died" in (status.error or "")


def test_a_failing_ranks_error_is_the_jobs_error(demo: DemoWorkspace, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(Path(demo.dataset).read_text())
    spec = spec_for(demo)
    spec = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"path": str(rows)})})
    folder = jobs.create_job(spec, data_dir=tmp_path, store=Store(tmp_path))
    rows.unlink()  # the ranks cannot read the data
    jobs.launch(folder, cache_dir=Path(demo.cache_dir))
    status = wait(folder)
    assert status.state == "failed" and status.exit_code == 1
    assert (status.error or "").startswith("NotFoundError at step 0:") and "rows.jsonl" in (status.error or "")
