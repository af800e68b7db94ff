"""Snapshots of the Infra and Deploy modes, 140×42, from fixed data.

Infra validates offline (templates, parameters, cloud-init, policies), so no Azure is needed. Deploy
reads its target's engine through `tests.fakeengine` (a local HTTP server speaking the few Docker
Engine calls the status uses) and its releases from the workspace store, written with fixed dates.
Regenerate with `pytest tests/ui/test_infra_deploy_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from services.store import Store
from tests.fakeengine import FakeContainer, FakeEngine
from tests.ui.conftest import SettingsFactory, make_app, settle, wait_for
from workbench.tui.screens.deploy.screen import DeployScreen
from workbench.tui.screens.infra.screen import InfraScreen

SIZE = (140, 42)
INFRA = Path(__file__).parents[2] / "infra"
SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
PUBLIC_KEY = "ssh-ed25519 " + "A" * 68 + " dev@workbench"


@pytest.fixture
def infra_settings(make_settings: SettingsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    shutil.copytree(INFRA, tmp_path / "infra")
    monkeypatch.chdir(tmp_path)  # findings name files as the settings do: `infra/...`, not this checkout's path
    key = tmp_path / "id_ed25519.pub"
    key.write_text(PUBLIC_KEY + "\n")
    return make_settings(
        azure__subscription_id=SUBSCRIPTION,
        azure__infra_dir="infra",
        azure__ssh_public_key=str(key),
    )


def test_infra_dev_validated(snap_compare: Any, infra_settings: Any) -> None:
    async def validated(pilot: Pilot[Any]) -> None:
        await pilot.press("7")
        screen = pilot.app.screen
        assert isinstance(screen, InfraScreen) and screen.env == "dev"
        await pilot.press("v")
        summary = screen.query_one("#infra-summary", Static)
        await wait_for(pilot, lambda: str(summary.render()).startswith("dev: "))
        await settle(pilot)

    assert snap_compare(make_app(infra_settings), terminal_size=SIZE, run_before=validated)


RELEASES = [
    # id, version, status, created_at, bom
    ("r20240226-091500-1a2b", "1.0.0", "retained", "2024-02-26T09:15:00+00:00", {"duration_s": 41.2}),
    ("r20240228-143000-3c4d", "1.1.0", "failed", "2024-02-28T14:30:00+00:00", {"error": "not ready within 30 s"}),
    ("r20240301-100500-5e6f", "2.0.0", "live", "2024-03-01T10:05:00+00:00", {"duration_s": 38.7}),
]
LIVE = "chatbot-2.0.0-5e6f"
LOG = "\n".join(
    [
        '{"level": "info", "message": "loading model", "model": "workbench-demo/tiny-llama"}',
        '{"level": "info", "message": "ready", "load_s": 2.4}',
        '{"level": "info", "message": "POST /v1/chat/completions 200", "ms": 212}',
    ]
)


def record_releases(data_dir: Path, target: str, app: str) -> None:
    """Releases as deploys would have recorded them, with fixed dates."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir)
    store.migrate()
    with store.transaction() as db:
        for rid, version, status, created, bom in RELEASES:
            db.execute(
                "INSERT INTO releases (id, app, target, version, status, bom, created_by, created_at, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rid, app, target, version, status, json.dumps(bom), "alice@dev", created, created),
            )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeEngine]:
    """The staging target's engine: the chatbot serving 2.0.0 behind the proxy, the classifier not deployed."""
    labels = {"workbench.version": "2.0.0", "workbench.release": RELEASES[-1][0]}
    with FakeEngine(tmp_path / "engine.sock", [FakeContainer(LIVE, labels=labels, logs=LOG)]) as fake:
        fake.route("chatbot", 8080, LIVE)
        yield fake


def test_deploy_with_a_target_and_releases(
    snap_compare: Any, make_settings: SettingsFactory, tmp_path: Path, engine: FakeEngine
) -> None:
    staging = {
        "host": "deploy.example.internal",
        "docker_host": engine.url,
        "apps": {"chatbot": {"port": 8080}, "classifier": {"port": 8081}},
    }
    settings = make_settings(targets__staging=json.dumps(staging))
    record_releases(settings.workspace.data_dir, "staging", "chatbot")

    async def deploy(pilot: Pilot[Any]) -> None:
        await pilot.press("6")
        screen = pilot.app.screen
        assert isinstance(screen, DeployScreen)
        await wait_for(pilot, lambda: len(screen.found) == 2)
        await settle(pilot)

    assert snap_compare(make_app(settings), terminal_size=SIZE, run_before=deploy)
