"""A service error's next step reaches the app phrased for the app: the keys to press, never a `workbench …`
command; the CLI phrases the same error's step as the command to run."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from services.demo import DEMO_MODEL
from services.finetune import jobs
from services.finetune.spec import dump_spec
from tests.ui import finetune_support
from tests.ui.conftest import SettingsFactory, make_app, wait_for
from workbench.cli.main import cli
from workbench.settings import Settings
from workbench.tui.screens.finetune.screen import FinetuneScreen
from workbench.wiring import Services

SIZE = (140, 42)


def with_keys(settings: Settings, keys: dict[str, str]) -> Settings:
    return settings.model_copy(update={"ui": settings.ui.model_copy(update={"keys": keys})})


async def test_a_launch_without_the_base_model_says_which_keys_download_it(
    make_settings: SettingsFactory, demo_template: Path, tmp_path: Path
) -> None:
    """The HF cache is empty: launching the demo job fails in the use case both front-ends share. The CLI
    names `workbench models download`; the app's notification names the keys that download it, as the
    user remapped them."""
    settings = with_keys(make_settings(), {"mode.models": "f1,1", "models.download": "ctrl+d"})
    services = Services(settings, gpus=[])
    spec = finetune_support.job_spec(finetune_support.copy_demo_data(demo_template, services.data_dir))
    job_file = tmp_path / "job.toml"
    job_file.write_text(dump_spec(spec))

    result = CliRunner().invoke(cli, ["finetune", "run", str(job_file)], obj=services)
    assert result.exit_code == 1, result.output
    assert f"hint: download it first: `workbench models download {DEMO_MODEL}`" in result.stderr.splitlines()

    app = make_app(settings, services=services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, FinetuneScreen)
        screen.launch_job(services, spec)
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "error")
    message, step = notice.message.splitlines()
    assert f"'{DEMO_MODEL}'" in message and "is not in the HF cache" in message
    assert step == f"download {DEMO_MODEL}: in Models (f1) › Hub (h), press / (Search), then ctrl+d (Download)"
    assert "workbench " not in notice.message
    assert not jobs.jobs_root(services.data_dir).exists()
