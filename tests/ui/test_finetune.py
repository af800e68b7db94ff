"""The Fine-tune mode with real jobs: the demo model trained on the CPU by the detached trainer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Select, Static

from services.finetune import jobs
from tests.ui import finetune_support as support
from tests.ui.conftest import TINY, SettingsFactory, make_app, wait_for
from workbench.tui.screens.finetune.form import NewJobScreen
from workbench.tui.screens.finetune.screen import FinetuneScreen
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.loss_curve import LossCurve

SIZE = (140, 42)


@pytest.fixture(scope="session")
def finished_template(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Path:
    return support.finished_job(tmp_path_factory, demo_template)


@pytest.fixture
def workspace(tmp_path: Path, demo_cache: Path, demo_template: Path) -> Iterator[Path]:
    """This test's workspace with the demo dataset; jobs still active at the end are cancelled."""
    data_dir = tmp_path / "workspace"
    support.copy_demo_data(demo_template, data_dir)
    yield data_dir
    support.reap(data_dir)


def long_job(workspace: Path, demo_cache: Path, *, steps: int = 3) -> Path:
    """A job far from done that has logged at least `steps` steps."""
    spec = support.job_spec(workspace / "demo" / "instructions.jsonl", max_steps=5000, save_every=1000)
    folder = support.start_job(workspace, demo_cache, spec)
    support.wait_until(folder, lambda s: s.step >= steps)
    return folder


async def finetune_mode(pilot: Pilot[Any], job_id: str | None = None) -> FinetuneScreen:
    """Switch to the Fine-tune mode and wait until `job_id` (or any poll) is shown in the detail pane."""
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, FinetuneScreen)
    pane = screen.pane
    if job_id is None:
        await wait_for(pilot, lambda: pane.has_class("-empty") or pane.detail is not None)
    else:
        await wait_for(pilot, lambda: pane.detail is not None and pane.detail.view.id == job_id)
    return screen


async def new_job_form(pilot: Pilot[Any]) -> NewJobScreen:
    await pilot.press("n")
    form = pilot.app.screen
    assert isinstance(form, NewJobScreen)
    await wait_for(pilot, lambda: form.applied is not None)
    return form


async def preflight(pilot: Pilot[Any], form: NewJobScreen) -> None:
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: form.plan is not None, timeout=60)
    await pilot.pause()


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_jobs_table_lists_a_completed_job(
    make_settings: SettingsFactory, workspace: Path, finished_template: Path
) -> None:
    job = support.copy_job(finished_template, workspace)
    losses = [m["loss"] for m in jobs.read_metrics(job) if m.get("loss") is not None]
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await finetune_mode(pilot, job.name)
        row = screen.table.get_row(job.name)
        assert row[:4] == ["demo-run", TINY, "lora", "completed"]
        assert row[4] == "8/8 100%"
        assert row[6] == f"{losses[-1]:.4f}"
        assert text_of(screen, "#jobs-summary").startswith("1 job · 0 active · in ~/workspace/jobs")


async def test_detail_shows_the_curves_and_the_adapter(
    make_settings: SettingsFactory, workspace: Path, finished_template: Path
) -> None:
    job = support.copy_job(finished_template, workspace)
    metrics = jobs.read_metrics(job)
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await finetune_mode(pilot, job.name)
        curve = screen.query_one(LossCurve)
        assert curve.train == [(m["step"], m["loss"]) for m in metrics if m.get("loss") is not None]
        assert [step for step, _ in curve.evals] == [4, 8]
        adapter = text_of(screen, "#job-adapter")
        assert f"adapter ~/workspace/jobs/{job.name}/adapter" in adapter
        assert f"base     {TINY} @ " in adapter
        assert "step 8/8 · 100%" in str(screen.query_one("#job-progress-text").render())
        await pilot.press("enter")
        assert screen.has_class("-detail-open") and not screen.table.display
        await pilot.press("escape")
        assert not screen.has_class("-detail-open") and screen.table.display


@pytest.mark.training  # the app starts the trainer
async def test_new_job_form_preflight_and_launch(make_settings: SettingsFactory, workspace: Path) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await finetune_mode(pilot)
        form = await new_job_form(pilot)
        values = form.values()
        assert values["name"] == "demo-tiny-llama" and values["model.id"] == TINY  # the demo job: it learns
        assert values["dataset.path"] == "~/workspace/demo/instructions.jsonl"
        assert (values["lora.method"], values["lora.r"], values["training.max_seq_length"]) == ("lora", "16", "128")
        assert "embed_tokens" in values["lora.target_modules"] and values["training.learning_rate"] == "0.008"
        form.query_one("#f-training-max-steps", Input).value = "4"
        form.query_one("#f-training-eval-every", Input).value = "2"
        await preflight(pilot, form)
        plan = form.plan
        assert plan is not None and plan.fits and plan.rows == 240 and plan.steps == 4
        report = text_of(form, "#plan-text")
        assert "240 rows (216 train, 24 eval)" in report and "trainable of" in report
        assert "NVIDIA L4" in report and "fits  (this job)" in report
        assert "Ready to launch" in text_of(form, "#plan-verdict")
        assert form.query_one("#plan-launch", Button).display
        await pilot.press("l")
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: any(v.name == "demo-tiny-llama" for v in screen.views.values()), timeout=30)
        view = next(v for v in screen.views.values() if v.name == "demo-tiny-llama")
        assert (view.folder / "job.toml").is_file() and view.status.state in {"queued", "running", "completed"}
        assert jobs.read_status(view.folder).pid is not None
        await wait_for(pilot, lambda: screen.views[view.id].status.state != "queued", timeout=60)
        assert screen.table.get_row(view.id)[3] in {"running", "completed"}


async def test_form_field_errors_stay_on_the_form(make_settings: SettingsFactory, workspace: Path) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        await finetune_mode(pilot)
        form = await new_job_form(pilot)
        form.query_one("#f-lora-r", Input).value = "0"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert form.page == "form-page" and form.plan is None
        assert "lora.r: input should be greater than 0" in text_of(form, "#form-error")
        assert form.focused is form.query_one("#f-lora-r")


async def test_qlora_on_a_cpu_machine_is_refused(make_settings: SettingsFactory, workspace: Path) -> None:
    app = make_app(make_settings(), gpus=[])
    async with app.run_test(size=SIZE) as pilot:
        await finetune_mode(pilot)
        form = await new_job_form(pilot)
        form.query_one("#f-lora-method", Select).value = "qlora"
        await preflight(pilot, form)
        assert form.plan is not None and form.plan.refusal is not None and not form.plan.fits
        verdict = text_of(form, "#plan-verdict")
        assert "REFUSED" in verdict and "needs a CUDA GPU" in verdict
        assert not form.query_one("#plan-launch", Button).display
        await pilot.press("l")
        await pilot.pause()
        assert app.screen is form
        assert not jobs.jobs_root(workspace).exists()


async def test_a_running_job_shows_its_history_and_cancels_after_confirmation(
    make_settings: SettingsFactory, workspace: Path, demo_cache: Path
) -> None:
    folder = long_job(workspace, demo_cache)
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await finetune_mode(pilot, folder.name)
        curve = screen.query_one(LossCurve)
        await wait_for(pilot, lambda: len(curve.train) >= 3)
        assert curve.train[0][0] == 1  # the whole history, from the first step
        assert screen.views[folder.name].status.state == "running"

        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"Cancel {folder.name} (running, step" in app.screen.body
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)  # "no" answered: nothing was started
        assert folder.name not in screen.busy
        assert not [w for w in app.workers if w.group == "finetune-cancel"]
        assert jobs.read_status(folder).state == "running"

        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(
            pilot, lambda: any(n.message.startswith(f"{folder.name}: cancelled at") for n in app.notices), 60
        )
        await wait_for(pilot, lambda: screen.views[folder.name].status.state == "cancelled")
        assert any((folder / "checkpoints").glob("checkpoint-*"))


async def test_resume_continues_a_cancelled_job_that_outlives_the_app(
    make_settings: SettingsFactory, workspace: Path, demo_cache: Path
) -> None:
    folder = long_job(workspace, demo_cache, steps=2)
    stopped = jobs.cancel(folder, grace_s=30)
    assert stopped.state == "cancelled"
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await finetune_mode(pilot, folder.name)
        assert screen.check_action("resume_job", ()) is True
        assert screen.check_action("cancel_job", ()) is None
        await pilot.press("r")
        await wait_for(pilot, lambda: screen.views[folder.name].status.state in jobs.ACTIVE, timeout=30)
        assert any(n.message == f"{folder.name} resumed from its latest checkpoint" for n in app.notices)
        support.wait_until(folder, lambda s: s.state == "running" and s.step > stopped.step)
    # Closing the app leaves the trainer alone.
    assert jobs.read_status(folder).state == "running"


async def test_merge_writes_the_merged_model(
    make_settings: SettingsFactory, workspace: Path, finished_template: Path
) -> None:
    job = support.copy_job(finished_template, workspace)
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await finetune_mode(pilot, job.name)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Merge the adapter of" in app.screen.body
        await pilot.press("y")
        await wait_for(pilot, (job / "merged" / "config.json").is_file, timeout=60)
        await wait_for(pilot, lambda: screen.pane.detail is not None and screen.pane.detail.merged is not None)
        assert f"merged  ~/workspace/jobs/{job.name}/merged" in text_of(screen, "#job-adapter")
        assert any("merged model saved to ~/workspace/jobs/" in n.message for n in app.notices)


async def test_palette_command_opens_the_form_from_another_mode(
    make_settings: SettingsFactory, workspace: Path
) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        await app.run_action("in_mode('finetune', 'new_job')")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobScreen))
        assert app.current_mode == "finetune"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FinetuneScreen))


async def test_trained_adapter_appears_in_models_local(
    make_settings: SettingsFactory, workspace: Path, finished_template: Path
) -> None:
    from workbench.tui.screens.models.local import LocalPane

    job = support.copy_job(finished_template, workspace)
    unfinished = support.copy_job(finished_template, workspace, name="demo-run-unfinished")
    shutil.rmtree(unfinished / "adapter")  # a job without an adapter is not listed
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        pane = app.screen.query_one(LocalPane)
        await wait_for(pilot, lambda: pane.listing is not None)
        table = pane.query_one("#local-adapters", DataTable)
        assert table.row_count == 1
        name, version, base, loss, *_ = table.get_row(job.name)
        assert (name, version) == ("demo-run", job.name) and base.startswith(TINY + " @ ")
        assert float(loss) > 0


async def test_open_in_playground_compares_base_with_the_adapter(
    make_settings: SettingsFactory, workspace: Path, finished_template: Path
) -> None:
    from workbench.tui.screens.playground.screen import PlaygroundScreen

    job = support.copy_job(finished_template, workspace)
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        await finetune_mode(pilot, job.name)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen))
        chat = app.screen.chat
        await wait_for(pilot, lambda: chat.opening is None and chat.comparing)
        a, b = chat.form("a"), chat.form("b")
        assert a.values("a")["model"] == b.values("b")["model"] == TINY
        assert a.values("a")["adapter"] is None
        assert b.values("b")["adapter"] == str(job / "adapter")
