"""Writing settings back: a deployment's outputs into the user settings file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workbench import locations
from workbench.config.loading import Layer, config_error, merge_values, read_toml
from workbench.config.schema import Settings


def infra_values(env: str, outputs: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """Settings sections from a deployment's outputs: `targets.<env>` always; `registry` and
    `artifacts` from dev (where the team pushes and stores), or from any environment while unset."""
    from services.deploy.target import TLS_PORT

    host = outputs.get("deployVmFqdn") or outputs.get("deployVmPublicIp") or outputs.get("deployVmPrivateIp")
    port = outputs.get("appPort")
    target = {
        "host": host,
        "user": outputs.get("adminUsername"),
        "app_port": None if port == TLS_PORT else port,  # 443 is the default once tls_cert and tls_key are set
        "registry": outputs.get("registryLoginServer"),
    }
    values: dict[str, Any] = {"targets": {env: _present(target)}} if host else {}
    shared = {
        "registry": {"login_server": outputs.get("registryLoginServer")},
        "artifacts": {"blob_endpoint": outputs.get("storageBlobEndpoint")},
    }
    for section, entries in shared.items():
        unset = not any((current.get(section) or {}).get(key) for key in entries)
        if (env == "dev" or unset) and _present(entries):
            values[section] = _present(entries)
    return values


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}


def save_infra_outputs(
    *, env: str, outputs: Mapping[str, Any], user_file: Path | None = None
) -> tuple[Path, list[str]]:
    """Write a deployment's outputs into the user settings file; returns the file and the keys written.

    Other sections and keys of the file are kept (its comments are not: the file is rewritten).
    """
    import tomli_w

    path = user_file or locations.user_config_file()
    current = read_toml(path) if path.is_file() else {}
    values = infra_values(env, outputs, current)
    merged = merge_values(current, values)
    try:
        Settings.model_validate(merged)
    except ValidationError as exc:
        raise config_error(exc, [Layer(str(path), merged)]) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(tomli_w.dumps(merged), encoding="utf-8")
    os.replace(partial, path)
    written = [f"{section}.{key}" for section, entries in values.items() for key in entries]
    return path, written
