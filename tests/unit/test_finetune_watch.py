"""Following job folders as they grow: incremental metrics, resumed steps, log tail, cached views."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from services.finetune.jobs import JobStatus, write_status
from services.finetune.spec import dump_spec, parse_spec
from services.finetune.watch import JobWatch, MetricsFollower, log_tail
from workbench.tui.widgets.loss_curve import downsample


def row(step: int, loss: float | None = None, eval_loss: float | None = None) -> str:
    return json.dumps({"step": step, "loss": loss, "eval_loss": eval_loss, "tokens_per_s": 100.0 * step}) + "\n"


def make_job(root: Path, name: str, state: str = "running", steps: int = 0) -> Path:
    folder = root / "jobs" / f"{name}-20240301-120000-000000"
    folder.mkdir(parents=True)
    spec = parse_spec({"name": name, "model": {"id": "org/model"}, "dataset": {"path": "d.jsonl"}}, source="test")
    (folder / "job.toml").write_text(dump_spec(spec))
    write_status(folder, JobStatus(state=state, step=steps, max_steps=10))  # type: ignore[arg-type]
    return folder


def test_metrics_are_read_incrementally_and_a_torn_line_waits(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(row(1, 2.0) + row(2, 1.8) + row(3, 1.7)[:10])
    follower = MetricsFollower(tmp_path)
    follower.read()
    assert follower.train == [(1, 2.0), (2, 1.8)]
    with metrics.open("a") as out:
        out.write(row(3, 1.7)[10:] + row(3, eval_loss=1.9))
    follower.read()
    assert follower.train == [(1, 2.0), (2, 1.8), (3, 1.7)]
    assert follower.evals == [(3, 1.9)]
    assert follower.latest["tokens_per_s"] == 300.0
    assert follower.offset == metrics.stat().st_size


def test_steps_logged_again_after_a_resume_replace_the_old_ones(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text("".join(row(s, 3.0 - s / 10) for s in range(1, 6)))
    with (tmp_path / "metrics.jsonl").open("a") as out:  # resumed from the checkpoint at step 3
        out.write(row(4, 9.0) + row(5, 8.0) + row(6, 7.0))
    follower = MetricsFollower(tmp_path)
    follower.read()
    assert follower.train == [(1, 2.9), (2, 2.8), (3, 2.7), (4, 9.0), (5, 8.0), (6, 7.0)]


def test_log_tail_shows_the_last_state_of_redrawn_lines(tmp_path: Path) -> None:
    (tmp_path / "train.log").write_text("one\nLoading: 10%\rLoading: 100%\nthree\nfour\n")
    assert log_tail(tmp_path, 3) == ["Loading: 100%", "three", "four"]
    assert log_tail(tmp_path / "missing", 3) == []


def test_watch_lists_jobs_newest_first_and_follows_the_running_one(tmp_path: Path) -> None:
    old = make_job(tmp_path, "a", state="completed", steps=10)
    (old / "metrics.jsonl").write_text(row(10, 0.5))
    running = make_job(tmp_path, "b", steps=2)
    (running / "metrics.jsonl").write_text(row(1, 2.0) + row(2, 1.5))
    watch = JobWatch(tmp_path, watch_gpus=False)
    views = watch.jobs()
    assert [v.name for v in views] == ["b", "a"]  # folder names sort newest first; here by name
    by_name = {v.name: v for v in views}
    assert by_name["a"].last_loss == 0.5 and by_name["b"].last_loss == 1.5
    with (running / "metrics.jsonl").open("a") as out:
        out.write(row(3, 1.2))
    detail = watch.detail(next(v for v in watch.jobs() if v.name == "b"))
    assert detail.train_loss == [(1, 2.0), (2, 1.5), (3, 1.2)]
    assert detail.view.last_loss == 1.2
    assert detail.adapter is None and detail.manifest is None and detail.gpus == []


def test_a_finished_job_is_read_again_only_when_its_status_changes(tmp_path: Path) -> None:
    folder = make_job(tmp_path, "a", state="completed", steps=10)
    watch = JobWatch(tmp_path, watch_gpus=False)
    first = watch.jobs()[0]
    assert watch.jobs()[0] is first
    write_status(folder, JobStatus(state="failed", step=10, max_steps=10, error="boom"))
    assert watch.jobs()[0].status.state == "failed"


def test_detail_shows_the_adapter_and_its_manifest(tmp_path: Path) -> None:
    folder = make_job(tmp_path, "a", state="completed", steps=10)
    adapter = folder / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "manifest.json").write_text(json.dumps({"kind": "adapter", "base_model": {"id": "org/model"}}))
    detail = JobWatch(tmp_path, watch_gpus=False).detail(JobWatch(tmp_path).jobs()[0])
    assert detail.adapter == adapter and detail.manifest == {"kind": "adapter", "base_model": {"id": "org/model"}}
    assert detail.merged is None


def test_downsample_keeps_the_shape_and_the_last_point() -> None:
    points = [(step, float(step)) for step in range(1, 1001)]
    small = downsample(points, 100)
    assert len(small) <= 100 and small[-1] == (1000, 1000.0)
    assert all(a[0] < b[0] for a, b in itertools.pairwise(small))
    assert downsample(points[:5], 100) == points[:5]
