"""Snapshot of the Images mode, 140×42: an app built and pushed (fake engine, fake registry).

Determinism: the app's files are written here and committed with a fixed author and date (so its
commit id is fixed), the fake registry listens on a free port but is configured under a fixed name
that its client routes to it (the tags show that name), the fake engine's image times and digests
are fixed, paths show under `~`, and no timing is on screen.
Regenerate with `pytest tests/ui/test_images_snapshots.py --snapshot-update` and look at the SVG.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from services.images.registry import RegistryClient
from tests.fakedocker import FakeDockerAPI
from tests.fakeregistry import FakeRegistry, RouteTransport
from tests.images_support import git_app, short_head
from tests.ui.conftest import SettingsFactory, make_app, settle, wait_for
from tests.ui.images_support import PASSWORD, images_mode, images_settings, text, use_engine

SIZE = (140, 42)
REGISTRY_SHOWN = "127.0.0.1:47393"
"""The registry's login server on screen (tags carry it): only a name, nothing listens there; the
registry client's requests for it go to the fake registry on its free port."""


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    with FakeRegistry(auth="basic", password=PASSWORD) as fake:
        route = RouteTransport({REGISTRY_SHOWN.rsplit(":", 1)[0]: fake.server})
        monkeypatch.setattr("services.images.ops.RegistryClient", partial(RegistryClient, transport=route))
        yield fake


def frozen_app(folder: Path) -> Path:
    """An app of its own (the engine is fake, so only the files' bytes matter): its commit id, shown
    on screen, must not change whenever the fixture app does."""
    folder.mkdir()
    (folder / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nCOPY app/ /app/\n")
    (folder / "app").mkdir()
    (folder / "app" / "main.py").write_text("print('hello')\n")
    return folder


def test_built_and_pushed(
    snap_compare: Any,
    make_settings: SettingsFactory,
    tmp_path: Path,
    registry: FakeRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    git_app(tmp_path / "repo", source=frozen_app(tmp_path / "frozen"))
    registry.add_image("hello", short_head(tmp_path / "repo"), layers=(31_457_280, 4_194_304, 12_288))
    use_engine(monkeypatch, FakeDockerAPI())

    async def build_and_push(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: pilot.app.status.hub_state != "checking")
        screen = await images_mode(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: text(screen, "#images-summary").startswith("built "))
        await wait_for(pilot, lambda: screen.inventory is not None and screen.inventory.apps[0].built)
        await pilot.press("p")
        await wait_for(pilot, lambda: text(screen, "#images-summary").startswith("pushed "))
        await settle(pilot)

    settings = images_settings(make_settings, tmp_path, registry, monkeypatch, login_server=REGISTRY_SHOWN)
    app = make_app(settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=build_and_push)
    assert registry.seen, "the registry client never reached the fake registry"
