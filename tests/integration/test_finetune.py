"""Fine-tune jobs on the CPU with the demo model: real transformers + PEFT, real detached processes."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.demo import DemoWorkspace, init_demo
from services.errors import ConfigError, NotFoundError, UsageError
from services.finetune import jobs
from services.finetune.plan import make_plan
from services.finetune.spec import JobSpec, parse_spec
from services.store import Store
from tests.integration.finetune_support import start, wait


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    root = tmp_path_factory.mktemp("demo")
    return init_demo(cache_dir=root / "hub", data_dir=root / "data")


def spec_for(demo: DemoWorkspace, **training: object) -> JobSpec:
    data = {
        "name": "t",
        "model": {"id": demo.model},
        "dataset": {"path": demo.dataset, "eval_split": 0.1},
        "lora": {"r": 8},
        "training": {"max_steps": 12, "save_every": 6, "eval_every": 6, "micro_batch_size": 4, **training},
    }
    return parse_spec(data, source="test")


def wait_for_step(folder: Path, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while jobs.read_status(folder).step < step:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_run_to_completion_and_adapter_changes_outputs(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = start(demo, tmp_path, spec_for(demo, learning_rate=5e-2))
    status = wait(folder)
    assert status.state == "completed", status.error
    assert status.step == status.max_steps == 12
    metrics = jobs.read_metrics(folder)
    assert [m["step"] for m in metrics if m.get("loss") is not None] == list(range(1, 13))
    assert any(m.get("eval_loss") for m in metrics)
    assert any(m.get("tokens_per_s") for m in metrics)
    manifest = json.loads((folder / "adapter" / "manifest.json").read_text())
    assert manifest["base_model"]["id"] == demo.model
    assert len(manifest["base_model"]["revision"]) == 40 and len(manifest["dataset"]["sha256"]) == 64
    assert manifest["job"]["lora"]["r"] == 8
    # plain PEFT loads it, and it changes what the model says
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(demo.model_path)
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, folder / "adapter")
    assert not torch.allclose(before, tuned(ids).logits)
    with Store(tmp_path).connect() as db:
        row = db.execute("SELECT kind, name, version FROM artifacts").fetchone()
    assert tuple(row) == ("adapter", "t", folder.name)


@pytest.mark.training  # a subprocess launches the trainer
def test_job_survives_the_process_that_launched_it(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = jobs.create_job(spec_for(demo), data_dir=tmp_path, store=Store(tmp_path))
    code = (
        "from pathlib import Path; from services.finetune import jobs; "
        f"jobs.launch(Path({str(folder)!r}), cache_dir=Path({demo.cache_dir!r}))"
    )
    launcher = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    launcher.wait(60)
    os.killpg(launcher.pid, signal.SIGKILL) if launcher.poll() is None else None  # the "SSH session" is gone
    assert wait(folder).state == "completed"


def test_cancel_saves_a_checkpoint_and_resume_continues_the_steps(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = start(demo, tmp_path, spec_for(demo, max_steps=400, save_every=1000, eval_every=1000))
    wait_for_step(folder, 5)
    stopped = jobs.cancel(folder, grace_s=60)
    assert stopped.state == "cancelled"
    step = stopped.step
    assert list((folder / "checkpoints").glob(f"checkpoint-{step}"))
    jobs.resume(folder, cache_dir=Path(demo.cache_dir))
    wait_for_step(folder, step + 3)
    jobs.cancel(folder, grace_s=60)
    logged = [m["step"] for m in jobs.read_metrics(folder) if m.get("loss") is not None]
    assert logged[:step] == list(range(1, step + 1))
    assert logged[step] == step + 1  # the curve continues where it stopped, no restart at 1


def test_sigkill_of_the_trainer_is_reported_as_failed(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = start(demo, tmp_path, spec_for(demo, max_steps=400, save_every=1000, eval_every=1000))
    wait_for_step(folder, 2)
    os.killpg(jobs.read_status(folder).pid, signal.SIGKILL)
    status = wait(folder, timeout=30)
    assert status.state == "failed"
    assert "died" in (status.error or "")


def test_queue_runs_two_jobs_in_order(demo: DemoWorkspace, tmp_path: Path) -> None:
    first = start(demo, tmp_path, spec_for(demo, max_steps=30))
    second = start(demo, tmp_path, spec_for(demo, max_steps=6))
    wait_for_step(first, 1)
    assert jobs.read_status(second).state == "queued"  # the GPU lock is taken
    assert wait(first).state == "completed" and wait(second).state == "completed"
    assert jobs.read_status(second).started_at >= jobs.read_status(first).finished_at


def test_sequence_classification_trains_and_predicts(demo: DemoWorkspace, tmp_path: Path) -> None:
    data = tmp_path / "labels.jsonl"
    words, moods = ["gpu", "model", "deploy", "cache"], [("great", "pos"), ("awful", "neg")]
    rows = [{"text": f"{w} is {mood}", "label": label} for w in words for mood, label in moods] * 5
    data.write_text("\n".join(json.dumps(r) for r in rows))
    spec = parse_spec(
        {
            "name": "cls",
            "task": "sequence-classification",
            "model": {"id": demo.model},
            "dataset": {"path": str(data), "eval_split": 0.2},
            "training": {"max_steps": 30, "learning_rate": 3e-3, "save_every": 100, "eval_every": 10},
        },
        source="test",
    )
    folder = start(demo, tmp_path, spec)
    assert wait(folder).state == "completed"
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = AutoModelForSequenceClassification.from_pretrained(demo.model_path, num_labels=2)
    model = PeftModel.from_pretrained(base, folder / "adapter").eval()
    tok = AutoTokenizer.from_pretrained(folder / "adapter")
    with torch.no_grad():
        logits = model(**tok(["gpu is great", "gpu is awful"], return_tensors="pt", padding=True)).logits
    labels = json.loads((folder / "adapter" / "manifest.json").read_text())["labels"]
    assert labels == ["neg", "pos"]
    losses = [m["eval_loss"] for m in jobs.read_metrics(folder) if m.get("eval_loss") is not None]
    assert losses and losses[-1] < math.log(2) / 2, losses  # well below chance (ln 2)
    predicted = [labels[i] for i in logits.argmax(-1).tolist()]
    assert predicted == ["pos", "neg"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lora": {"r": 0}}, "lora.r: input should be greater than 0"),
        ({"training": {"learning_rate": -1}}, "training.learning_rate: input should be greater than 0"),
        ({"dataset": {"path": "X", "prompt_template": "{question}"}}, "column 'question'"),
        ({"model": {"id": "nobody/nothing"}}, "not in the HF cache"),
        ({"lora": {"method": "qlora"}}, "needs a CUDA GPU"),
    ],
)
def test_bad_configs_are_refused_before_anything_starts(
    demo: DemoWorkspace, tmp_path: Path, change: dict[str, dict[str, object]], message: str
) -> None:
    data = spec_for(demo).model_dump()
    for section, values in change.items():
        data[section] = {**data[section], **values}
        if data[section].get("path") == "X":
            data[section]["path"] = demo.dataset
    with pytest.raises((ConfigError, NotFoundError, UsageError)) as err:
        plan = make_plan(parse_spec(data, source="job.toml"), cache_dir=Path(demo.cache_dir))
        if plan.refusal:
            raise UsageError(plan.refusal)
    assert message in str(err.value)


def test_bad_dataset_lines_and_empty_fields(demo: DemoWorkspace, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a", "input": "b", "output": "c"}\n{"instruction": oops}\n')
    spec = spec_for(demo).model_copy(
        update={"dataset": spec_for(demo).dataset.model_copy(update={"path": str(broken)})}
    )
    with pytest.raises(ConfigError, match=r"broken.jsonl:2: invalid JSON"):
        make_plan(spec, cache_dir=Path(demo.cache_dir))
    holes = tmp_path / "holes.jsonl"
    holes.write_text(
        '{"instruction": "a", "input": "b", "output": "c"}\n{"instruction": "", "input": "b", "output": "c"}\n'
    )
    spec = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"path": str(holes)})})
    plan = make_plan(spec, cache_dir=Path(demo.cache_dir))
    assert plan.empty == [(2, "instruction")]
    assert plan.rows == 2 and plan.tokens.count == 2


def test_merge_gives_plain_weights_with_the_adapters_outputs(demo: DemoWorkspace, tmp_path: Path) -> None:
    folder = start(demo, tmp_path, spec_for(demo, learning_rate=5e-2))
    assert wait(folder).state == "completed"
    from services.finetune.merge import merge_adapter

    merged_dir = merge_adapter(folder, cache_dir=Path(demo.cache_dir))
    assert (merged_dir / "model.safetensors").is_file()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[1, 20, 30, 40]])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(demo.model_path), folder / "adapter")
    assert torch.allclose(merged(ids).logits, tuned(ids).logits, atol=1e-4)
