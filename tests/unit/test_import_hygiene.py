"""The start path stays light, and services never reach for the UI."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import workbench.tui

HEAVY = ["torch", "transformers", "peft", "bitsandbytes", "chromadb", "docker", "azure"]


@pytest.mark.parametrize("module", ["workbench.tui.app", "workbench.cli.main"])
def test_start_path_loads_no_heavy_library(module: str) -> None:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    offenders = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert offenders == []


OFF_THE_FIRST_FRAME = [
    # the other modes' screens: imported when the mode first opens (`LAZY_MODES`)
    "workbench.tui.screens.finetune.screen",
    "workbench.tui.screens.playground.screen",
    "workbench.tui.screens.artifacts.screen",
    "workbench.tui.screens.deploy.screen",
    "workbench.tui.screens.infra.screen",
    "workbench.tui.screens.images.screen",
    # the model card: Markdown, its parser and Pygments load when the first card (or its warm-up) mounts
    "textual.widgets._markdown",
    "markdown_it",
    "pygments",
    # the hub client and the job models load in the workers that use them
    "huggingface_hub",
    "httpx",
    "services.finetune.adapters",
]


def test_tui_start_path_leaves_later_modules_unloaded() -> None:
    """Importing the app loads the Models screen only: each module here costs the first frame when loaded."""
    code = "import sys, json, workbench.tui.app; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert "workbench.tui.screens.models.screen" in loaded
    assert [m for m in OFF_THE_FIRST_FRAME if m in loaded or any(n.startswith(f"{m}.") for n in loaded)] == []


def test_start_stylesheet_holds_only_the_first_screen() -> None:
    """The app's stylesheet, parsed before the first frame, styles the Models mode; every other mode's screens
    bring their own file (`CSS_PATH`), parsed when one of them is first shown."""
    tui = Path(workbench.tui.__file__).parent
    top_level = re.findall(r"^([A-Za-z][\w, ]*?)\s*\{", (tui / "app.tcss").read_text(), re.MULTILINE)
    screens = {name.strip() for selector in top_level for name in selector.split(",")}
    assert screens == {"ModelsScreen", "PlaceholderScreen"}
    for mode in ["finetune", "playground", "artifacts", "deploy", "infra", "images"]:
        assert (tui / "screens" / mode / f"{mode}.tcss").is_file()


def test_services_import_no_textual() -> None:
    code = (
        "import sys, json, pkgutil, importlib, services\n"
        "for m in pkgutil.walk_packages(services.__path__, 'services.'): importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert [m for m in loaded if m.split(".")[0] in {"textual", "click"} or m.startswith("workbench")] == []
