"""Text and JSON renderings of image builds, pushes and listings (shared by the CLI and the Images mode)."""

from __future__ import annotations

import json
from typing import Any

from services.images.apps import is_deployable
from services.images.build import BuildResult
from services.images.engine import LocalImage
from services.images.ops import AppImages, Inventory
from services.images.push import LayerProgress, PushProgress, PushResult
from services.units import human_bytes
from workbench.present.text import table


def version_text(row: AppImages) -> str:
    """The app's version, marked when it cannot go to prod."""
    version = row.version.version
    return version if is_deployable(version, "prod") else f"{version} (not for prod)"


def build_summary(result: BuildResult) -> str:
    cached = f", {result.cached_steps} from cache" if result.cached_steps else ""
    line = (
        f"built {result.reference} ({result.image_id.removeprefix('sha256:')[:12]}) in {result.seconds:.1f} s: "
        f"{result.steps} steps{cached}"
    )
    if not is_deployable(result.version, "prod"):
        line += "\nnote: built from uncommitted changes (-dirty): this tag can never be deployed to prod"
    return line


def layer_line(layer: LayerProgress) -> str:
    size = human_bytes(layer.total) if layer.total else ""
    return f"  {layer.id:<12}  {layer.status:<22} {size}".rstrip()


def push_line(progress: PushProgress) -> str:
    """One line for the whole push: layers done and bytes moved."""
    layers = f"{progress.finished}/{len(progress.layers)} layers"
    moved = f"{human_bytes(progress.done_bytes)}/{human_bytes(progress.total_bytes)}"
    return f"{progress.reference}: {layers}, {moved} ({progress.fraction:.0%})"


def push_summary(result: PushResult) -> str:
    size = human_bytes(result.size_bytes) if result.size_bytes is not None else "unknown"
    counts = f"{len(result.layers)} layers: {result.pushed_layers} pushed, {result.existing_layers} already there"
    return "\n".join(
        [
            f"pushed {result.reference} in {result.seconds:.1f} s",
            f"digest  {result.digest}",
            f"size    {size} compressed ({counts})",
        ]
    )


def inventory_text(inventory: Inventory) -> str:
    if not inventory.apps:
        return (
            "no apps found (folders with a Dockerfile or [tool.appkit.image] in pyproject.toml,"
            " under images.apps_dir or in images.app_dirs)"
        )
    parts = [table(["APP", "VERSION", "BUILT", "FOLDER"], [_app_row(row) for row in inventory.apps])]
    images = [_image_row(image) for row in inventory.apps for image in row.local]
    parts.append(table(["LOCAL IMAGE", "ID", "SIZE", "CREATED"], images) if images else "no local images")
    if inventory.remote_listed:
        tags = [[f"{t.app}:{t.tag}", t.digest or "-"] for row in inventory.apps for t in row.remote]
        registry = inventory.registry or ""
        parts.append(table([f"REGISTRY {registry}", "DIGEST"], tags) if tags else f"no tags in {registry}")
    return "\n\n".join(parts)


def _app_row(row: AppImages) -> list[str]:
    return [row.app.name, version_text(row), "yes" if row.built else "no", str(row.app.path)]


def _image_row(image: LocalImage) -> list[str]:
    return [image.reference, image.image_id, human_bytes(image.size_bytes), image.created.strftime("%Y-%m-%d %H:%M")]


def inventory_json(inventory: Inventory) -> str:
    return json.dumps(inventory_dict(inventory), indent=2)


def inventory_dict(inventory: Inventory) -> dict[str, Any]:
    return {
        "registry": inventory.registry,
        "apps": [_app_dict(row) for row in inventory.apps],
        "problems": list(inventory.problems),
    }


def _app_dict(row: AppImages) -> dict[str, Any]:
    return {
        "name": row.app.name,
        "path": str(row.app.path),
        "version": row.version.version,
        "revision": row.version.revision or None,
        "dirty": row.version.dirty,
        "deployable_to_prod": is_deployable(row.version.version, "prod"),
        "reference": row.reference,
        "built": row.built,
        "local": [
            {
                "reference": image.reference,
                "id": image.image_id,
                "created": image.created.isoformat(),
                "size_bytes": image.size_bytes,
                "version": image.version,
                "revision": image.revision,
            }
            for image in row.local
        ],
        "remote": [{"tag": tag.tag, "digest": tag.digest} for tag in row.remote],
    }
