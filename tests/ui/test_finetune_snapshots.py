"""Snapshots of the Fine-tune mode, 140×42: the jobs table, a job's detail, the form and its preflight.

Determinism: the job is a real completed run copied into the test's workspace under a fixed name,
with fixed times, a fixed curve, log and manifest (the trainer's own figures vary a little between
machines); the time zone is UTC, the GPU is a fixed fake, and paths show under `~`.
Regenerate with `pytest tests/ui/test_finetune_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from services.finetune import jobs
from tests.ui import finetune_support as support
from tests.ui.conftest import SettingsFactory, make_app, settle, wait_for
from workbench.tui.screens.finetune.form import NewJobScreen
from workbench.tui.screens.finetune.screen import FinetuneScreen

SIZE = (140, 42)
JOB_ID = "demo-run-20240301-120000-000000"
LOSSES = (6.31, 6.27, 6.24, 6.18, 6.12, 6.05, 5.97, 5.90)
EVALS = {4: 6.16, 8: 5.94}


@pytest.fixture(scope="session")
def finished_template(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Path:
    return support.finished_job(tmp_path_factory, demo_template)


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC (the table and the detail show local times)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def workspace(tmp_path: Path, demo_cache: Path, demo_template: Path, utc: None) -> Path:
    data_dir = tmp_path / "workspace"
    support.copy_demo_data(demo_template, data_dir)
    return data_dir


def metrics_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for step, loss in enumerate(LOSSES, start=1):
        rows.append(
            {
                "step": step,
                "epoch": round(step / 54, 4),
                "loss": loss,
                "learning_rate": 2e-4 * (1 - step / 9),
                "tokens_per_s": 4200.0,
                "gpu_memory_bytes": None,
            }
        )
        if step in EVALS:
            rows.append({"step": step, "epoch": round(step / 54, 4), "loss": None, "eval_loss": EVALS[step]})
    return rows


def frozen_job(template: Path, data_dir: Path) -> Path:
    """The session's completed job with every figure that varies between runs fixed."""
    folder = support.copy_job(template, data_dir, JOB_ID)
    status = replace(
        jobs.read_status(folder, check_alive=False),
        queued_at="2024-03-01T12:00:00+00:00",
        started_at="2024-03-01T12:00:04+00:00",
        finished_at="2024-03-01T12:00:11+00:00",
    )
    (folder / "status.json").write_text(json.dumps(asdict(status)))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics_rows()))
    log = [f"{{'loss': '{loss}', 'epoch': '{step / 54:.4f}'}}" for step, loss in enumerate(LOSSES, start=1)]
    (folder / "train.log").write_text("\n".join(["Loading weights: 100%", *log, "{'train_loss': '6.12'}"]) + "\n")
    manifest_path = folder / "adapter" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(
        version=JOB_ID,
        base_model={"id": manifest["base_model"]["id"], "revision": "0123456789abcdef0123"},
        dataset={"path": str(data_dir / "demo" / "instructions.jsonl"), "sha256": "fedcba9876543210" * 4},
        git_revision="abcdef012345" * 3,
        metrics={"train_loss": 6.12, "eval_loss": EVALS[8]},
    )
    manifest_path.write_text(json.dumps(manifest))
    return folder


async def job_shown(pilot: Pilot[Any]) -> FinetuneScreen:
    await wait_for(pilot, lambda: pilot.app.status.hub_state != "checking")
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, FinetuneScreen)
    await wait_for(pilot, lambda: screen.pane.detail is not None and screen.pane.detail.view.id == JOB_ID)
    await pilot.pause()
    return screen


async def form_shown(pilot: Pilot[Any]) -> NewJobScreen:
    await wait_for(pilot, lambda: pilot.app.status.hub_state != "checking")
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, FinetuneScreen)
    await wait_for(pilot, lambda: screen.pane.has_class("-empty"))
    await pilot.press("n")
    form = pilot.app.screen
    assert isinstance(form, NewJobScreen)
    await wait_for(pilot, lambda: form.applied is not None)
    await settle(pilot)  # the filled, focused name field repaints after its value changes
    await pilot.pause()
    return form


def test_jobs_table_with_a_completed_job(
    snap_compare: Any, make_settings: SettingsFactory, workspace: Path, finished_template: Path
) -> None:
    frozen_job(finished_template, workspace)
    assert snap_compare(make_app(make_settings()), terminal_size=SIZE, run_before=job_shown)


def test_job_detail(
    snap_compare: Any, make_settings: SettingsFactory, workspace: Path, finished_template: Path
) -> None:
    async def detail(pilot: Pilot[Any]) -> None:
        await job_shown(pilot)
        await pilot.press("enter")
        await pilot.pause()

    frozen_job(finished_template, workspace)
    assert snap_compare(make_app(make_settings()), terminal_size=SIZE, run_before=detail)


def test_new_job_form(snap_compare: Any, make_settings: SettingsFactory, workspace: Path) -> None:
    assert snap_compare(make_app(make_settings()), terminal_size=SIZE, run_before=form_shown)


def test_preflight_page(snap_compare: Any, make_settings: SettingsFactory, workspace: Path) -> None:
    async def preflight(pilot: Pilot[Any]) -> None:
        form = await form_shown(pilot)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: form.plan is not None, timeout=60)
        await pilot.pause()

    assert snap_compare(make_app(make_settings()), terminal_size=SIZE, run_before=preflight)
