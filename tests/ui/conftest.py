"""Fixtures for Pilot and snapshot tests of the terminal app.

Every app here writes only under the test's `tmp_path`: HOME, the HF cache and the workspace
point there, the GPU is a fixed fake, and the demo workspace is copied in from one built per
session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import constants
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input

from services.gpu import Gpu
from tests.fakehub import FakeHub
from workbench.settings import Settings, load_settings
from workbench.tui.app import WorkbenchApp

FIXED_GPU = Gpu(0, "NVIDIA L4", 24 * 1024**3, 22 * 1024**3)
FIXED_TIME = datetime(2024, 3, 1, 12, 0, tzinfo=UTC).timestamp()
TINY = "workbench-demo/tiny-llama"


def _steady_cursor(mount: Callable[[Input, Any], None]) -> Callable[[Input, Any], None]:
    """`Input._on_mount` with the cursor blink off: a focused input always shows its cursor, so a
    snapshot does not depend on which half of a blink the machine's speed lands on."""

    def on_mount(self: Input, event: Any) -> None:
        self.cursor_blink = False
        mount(self, event)

    return on_mount


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No telemetry to the real Hub, no ambient token file, no animations, no cursor blink, paths
    shown as `~/...`."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(Input, "_on_mount", _steady_cursor(Input._on_mount))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF cache holding the demo models, built once per session."""
    from services.demo import init_demo

    root = tmp_path_factory.mktemp("demo-template")
    init_demo(cache_dir=root / "hub", data_dir=root / "workspace")
    return root / "hub"


def copy_cache(template: Path, target: Path) -> Path:
    """Copy an HF cache (symlinks kept) and give every entry a fixed time.

    Blobs are copied, not hard-linked: a link shares the inode, so another test reading the
    template (a model load in a worker that outlives its test) would move this copy's access time.
    """
    shutil.copytree(template, target, symlinks=True)
    for path in [target, *target.rglob("*")]:
        os.utime(path, (FIXED_TIME, FIXED_TIME), follow_symlinks=False)
    return target


@pytest.fixture
def demo_cache(demo_template: Path, tmp_path: Path) -> Path:
    """This test's HF cache, already holding the demo models."""
    return copy_cache(demo_template, tmp_path / "hub")


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for one test: cache and workspace under tmp_path, extra `WORKBENCH_*` values as keywords."""

    def build(endpoint: str = "http://127.0.0.1:9", **env: str) -> Settings:
        environ = {
            "WORKBENCH_HUB__ENDPOINT": endpoint,
            "WORKBENCH_HUB__CACHE_DIR": str(tmp_path / "hub"),
            "WORKBENCH_HUB__TIMEOUT": "2",
            "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "workspace"),
            "WORKBENCH_MODELS__SEARCH_PAGE_SIZE": "20",
            "WORKBENCH_SERVER__STATE_DIR": str(tmp_path / "no-gpu-server"),  # never this machine's shared queue
            **{f"WORKBENCH_{key.upper()}": value for key, value in env.items()},
        }
        return load_settings(project_file=None, user_file=tmp_path / "none.toml", environ=environ)

    return build


@dataclass(frozen=True)
class Notice:
    """A notification the app showed."""

    title: str
    message: str
    severity: str


def make_app(settings: Settings, *, hub_shown: str | None = None, **kwargs: Any) -> Any:
    """A WorkbenchApp with a fixed GPU, no first-start demo, no animations, and `notices`:
    the notifications it showed. `hub_shown`: the hub address the status bar shows instead of the
    endpoint's (a snapshot's fake hub listens on a free port, which changes every run)."""
    kwargs.setdefault("init_demo_on_empty", False)
    kwargs.setdefault("gpus", [FIXED_GPU])
    app = WorkbenchApp(settings, **kwargs)
    app.animation_level = "none"
    if hub_shown is not None:
        app.status = replace(app.status, hub=hub_shown)
    notices: list[Notice] = []
    show = app.notify

    def notify(message: str, *, title: str = "", severity: Any = "information", **rest: Any) -> None:
        notices.append(Notice(title, message, severity))
        show(message, title=title, severity=severity, **rest)

    app.notify = notify  # type: ignore[method-assign]
    app.notices = notices  # type: ignore[attr-defined]
    return app


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Let the app run until `condition()` is true; fail after `timeout` seconds (generous: a loaded
    machine is slow, and a passing test never waits for the deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(condition, '__name__', condition)}")
        await pilot.pause(0.02)


Cell = tuple[str, str]
"""One cell on the screen: its character and its colours (a blank's: its background only, since a
blank shows no foreground)."""


def drawn_line(widget: Widget, y: int) -> list[Cell]:
    """Line `y` (from the widget's top) of what the screen shows where `widget` is."""
    region = widget.region
    strip = widget.screen._compositor.render_strips()[region.y + y]
    return [
        (ch, str(seg.style.bgcolor) if ch == " " and seg.style else str(seg.style))
        for seg in strip.crop(region.x, region.right)
        for ch in seg.text
    ]


def text_of(cells: list[Cell]) -> str:
    return "".join(ch for ch, _ in cells)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for running workers and the messages they posted."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await asyncio.sleep(0)


@pytest.fixture
def synthetic_hub(fake_hub: FakeHub) -> FakeHub:
    """A fake hub with 300 varied metadata-only models."""
    fake_hub.add_synthetic_models(300, seed=7)
    return fake_hub
