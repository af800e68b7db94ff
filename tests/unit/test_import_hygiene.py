"""The start path stays light, and services never reach for the UI."""

import json
import subprocess
import sys

import pytest

HEAVY = ["torch", "transformers", "peft", "bitsandbytes", "chromadb", "docker", "azure"]


@pytest.mark.parametrize("module", ["workbench.tui.app", "workbench.cli.main"])
def test_start_path_loads_no_heavy_library(module: str) -> None:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    offenders = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert offenders == []


def test_services_import_no_textual() -> None:
    code = (
        "import sys, json, pkgutil, importlib, services\n"
        "for m in pkgutil.walk_packages(services.__path__, 'services.'): importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert [m for m in loaded if m.split(".")[0] in {"textual", "click"} or m.startswith("workbench")] == []
