"""The cloud-init files in `infra/cloud-init/` and their copies embedded in the template's variables."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.files import write_atomic
from services.infra.findings import Finding
from services.infra.inputs import read_json


def cloud_init_variable(path: Path) -> str:
    """The template variable that embeds a cloud-init file: `docker-nvidia.yaml` -> `cloudInitDockerNvidia`."""
    return "cloudInit" + "".join(part.capitalize() for part in re.split(r"[-_.]", path.stem) if part)


def cloud_init_drift(template: Mapping[str, Any], cloud_init_dir: Path, where: str = "template") -> list[Finding]:
    """Cloud-init files whose embedded copy in the template's variables is missing or different."""
    variables = template.get("variables") or {}
    found = []
    for path in sorted(cloud_init_dir.glob("*.yaml")):
        name = cloud_init_variable(path)
        if variables.get(name) != path.read_text(encoding="utf-8"):
            state = "missing" if name not in variables else "differs from"
            found.append(
                Finding(
                    "error",
                    f"{where}: variables.{name}",
                    f"{state} {path}: run scripts/infra-sync-cloud-init (ARM cannot read files: the text is embedded)",
                )
            )
    return found


def sync_cloud_init(template_path: Path, cloud_init_dir: Path) -> list[str]:
    """Copy every cloud-init file into the template's variables; returns the variables it changed."""
    template = read_json(template_path, "template")
    variables = template.setdefault("variables", {})
    changed = []
    for path in sorted(cloud_init_dir.glob("*.yaml")):
        name, text = cloud_init_variable(path), path.read_text(encoding="utf-8")
        if variables.get(name) != text:
            variables[name] = text
            changed.append(name)
    if changed:
        write_atomic(template_path, json.dumps(template, indent=2) + "\n")
    return changed
