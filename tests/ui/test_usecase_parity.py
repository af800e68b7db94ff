"""The CLI and the TUI reach the same outcome for the verbs they used to assemble differently.

Each test drives a verb once through `workbench ...` and once through the screen; both call the
same use case (`workbench.usecases`), built on a `Services` the test hands in.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from textual.widgets import Input, Static

from services.finetune import jobs
from services.finetune.spec import dump_spec
from services.rag.collections import recorded
from tests.fakehub import FakeHub
from tests.ui import finetune_support, playground_support
from tests.ui.conftest import SettingsFactory, make_app, wait_for
from workbench.cli.main import cli
from workbench.tui.screens.artifacts.screen import ArtifactsScreen
from workbench.tui.screens.finetune.screen import FinetuneScreen
from workbench.tui.screens.models.hub import HubPane
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.prompt import PromptScreen
from workbench.wiring import Services

SIZE = (140, 42)


def run_cli(services: Services, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj=services)
    return result.exit_code, result.output


async def test_playground_reingests_a_collection_built_with_cli_chunking(
    make_settings: SettingsFactory, demo_cache: Path, demo_template: Path, tmp_path: Path
) -> None:
    """A collection built with `--chunk-size`/`--overlap` keeps them when the Playground re-ingests it."""
    services = Services(make_settings())
    docs = playground_support.copy_demo(demo_template, services.data_dir) / "documents"
    code, output = run_cli(
        services, "rag", "ingest", str(docs), "-c", "demo-docs", "--chunk-size", "128", "--overlap", "16", "--quiet"
    )
    assert code == 0, output

    app = make_app(services.settings, services=services)
    async with app.run_test(size=SIZE) as pilot:
        pane = (await playground_support.playground(pilot, "collections")).collections
        await wait_for(pilot, lambda: "demo-docs" in pane.collections)
        pane.query_one("#ingest-path", Input).value = str(docs)
        pane.query_one("#ingest-collection", Input).value = "demo-docs"
        await app.run_action("in_mode('playground', 'ingest')")
        status = pane.query_one("#ingest-status", Static)
        await wait_for(pilot, lambda: pane.cancel_token is None, timeout=120)
        assert str(status.render()).startswith("demo-docs: 0 added, 0 replaced, 7 unchanged, 0 removed files")
    built = recorded(services.chroma(), "demo-docs")
    assert built is not None and (built.chunk_size, built.overlap) == (128, 16)


async def test_kbit_launch_without_cuda_is_refused_alike(
    make_settings: SettingsFactory, demo_cache: Path, demo_template: Path, tmp_path: Path
) -> None:
    """The TUI's launch runs every launch check the CLI runs: QLoRA on a CPU machine is refused there
    too, with the same message and hint, and no job folder is made."""
    services = Services(make_settings(), gpus=[])
    dataset = finetune_support.copy_demo_data(demo_template, services.data_dir)
    spec = finetune_support.job_spec(dataset, name="qlora-run")
    spec = spec.model_copy(update={"lora": spec.lora.model_copy(update={"method": "qlora"})})
    job_file = tmp_path / "job.toml"
    job_file.write_text(dump_spec(spec))

    code, output = run_cli(services, "finetune", "run", str(job_file))
    assert code == 2, output
    message = output.split("error: ", 1)[1].split("\n", 1)[0]
    hint = output.split("hint: ", 1)[1].split("\n", 1)[0]
    assert "needs a CUDA GPU" in message

    app = make_app(services.settings, services=services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, FinetuneScreen)
        screen.launch_job(services, spec)
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "error")
        assert notice.message == f"{message}\n{hint}"
    assert not jobs.jobs_root(services.data_dir).exists()


async def test_download_of_a_gated_model_is_refused_alike(make_settings: SettingsFactory, fake_hub: FakeHub) -> None:
    """The download pre-check (access, then disk) is one use case: the CLI's download and the Hub tab's
    `d` refuse a gated model without access with the same message and hint, before fetching a file."""
    fake_hub.add_repo("acme/locked-7b", {"config.json": b'{"model_type": "llama"}'}, gated="manual", license="other")
    services = Services(make_settings(fake_hub.endpoint))

    code, output = run_cli(services, "models", "download", "acme/locked-7b", "--quiet")
    assert code == 1, output
    message = output.split("error: ", 1)[1].split("\n", 1)[0]
    hint = output.split("hint: ", 1)[1].split("\n", 1)[0]
    assert "acme/locked-7b is gated" in message

    app = make_app(services.settings, services=services)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.screen.query_one(HubPane)
        await wait_for(pilot, lambda: pane.details is not None and pane.details.id == "acme/locked-7b")
        await pilot.press("d")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "error")
        assert notice.message == f"{message}\n{hint}"
        assert not isinstance(app.screen, ConfirmScreen)
    assert not (services.cache_dir / "models--acme--locked-7b" / "snapshots").exists()


async def test_label_moves_are_told_alike(make_settings: SettingsFactory, tmp_path: Path) -> None:
    """`workbench artifacts label` and the Artifacts mode's `t` move labels through one use case and
    report the move in the same words (the screen used to say "(was v1)" for a label already there)."""
    services = Services(make_settings())
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n')
    code, output = run_cli(services, "artifacts", "add", "dataset", str(rows), "--name", "rows", "--version", "v1")
    assert code == 0, output
    code, output = run_cli(services, "artifacts", "label", "rows@v1", "staging")
    assert (code, output.strip()) == (0, "rows:staging -> v1 in the workspace")

    app = make_app(services.settings, services=services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, ArtifactsScreen) and bool(app.screen.infos))
        screen = app.screen
        assert isinstance(screen, ArtifactsScreen)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("enter")  # the suggested label: staging, where it already points
        status = screen.query_one("#artifacts-status", Static)
        await wait_for(pilot, lambda: "staging" in str(status.render()))
        assert str(status.render()) == "rows:staging -> v1 in the workspace"
