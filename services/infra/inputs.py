"""An environment's ARM template and parameter values, read from `infra/` with `--param` overrides and the SSH key."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.errors import ConfigError, UsageError
from services.infra.expr import Resolver
from services.infra.policy import flatten

ENVIRONMENTS = ("dev", "prod")

TEMPLATE_FILE = "main.json"

SSH_KEY_PARAMETER = "adminSshPublicKey"
"""Filled from the `azure.ssh_public_key` file at deploy time, so the parameter files leave it out."""

PUBLIC_KEY_PREFIXES = ("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-", "sk-ssh-ed25519@", "sk-ecdsa-sha2-")

DEFAULT_KEYS = ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub")

SECURE_HINT = "pass a secure value as --param NAME=@FILE (a file only you can read), never NAME=VALUE in argv"


@dataclass(frozen=True)
class InfraInputs:
    """An environment's template and parameter values, ready to validate or deploy."""

    env: str
    template_path: Path
    params_path: Path
    template: dict[str, Any] = field(repr=False)
    values: dict[str, Any] = field(repr=False)
    """Parameter values from the file, then overrides (template defaults not included)."""
    sources: dict[str, str]
    """Where each value came from: the parameter file, `--param`, or the SSH key file."""

    def deployment_parameters(self) -> dict[str, dict[str, Any]]:
        """The `parameters` object of an ARM deployment request."""
        return {name: {"value": value} for name, value in self.values.items()}

    def vm_sizes(self) -> list[str]:
        """The VM sizes this deployment creates (conditions and expressions resolved where possible)."""
        resolver = Resolver(self.template, self.values)
        sizes = []
        for resource in flatten(self.template.get("resources")):
            if resource.type.lower() != "microsoft.compute/virtualmachines":
                continue
            if resolver.resolve(resource.body.get("condition", True)) is False:
                continue
            size = resolver.resolve(resource.prop("hardwareProfile", "vmSize"))
            if isinstance(size, str):
                sizes.append(size)
        return sizes


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`; `ConfigError` naming the file, line and column otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist", hint="check azure.infra_dir / azure.params_dir") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="fix the file (ARM files are plain JSON here: no comments, no trailing commas)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a JSON object")
    return data


def params_file(infra_dir: Path, env: str, params_dir: Path | None = None) -> Path:
    """The parameter file of `env`: `<params_dir or infra_dir/params>/<env>.json`."""
    if env not in ENVIRONMENTS:
        raise UsageError(f"unknown environment '{env}'", hint=f"use one of: {', '.join(ENVIRONMENTS)}")
    return (params_dir or infra_dir / "params") / f"{env}.json"


def load_inputs(
    *,
    infra_dir: Path,
    env: str,
    params_dir: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    ssh_public_key: Path | None = None,
) -> InfraInputs:
    """Read the template and `env`'s parameter file; apply `--param` overrides and the SSH public key.

    Override values are text, converted by the parameter's declared type (int, bool, JSON for
    object/array). The public key fills `adminSshPublicKey` unless the file or an override sets it.
    """
    template_path = infra_dir / TEMPLATE_FILE
    params_path = params_file(infra_dir, env, params_dir)
    template = read_json(template_path, "template")
    values, sources = _file_values(read_json(params_path, "parameter file"), params_path)
    declared = declared_parameters(template)
    for name, text in (overrides or {}).items():
        values[name] = convert_override(name, text, declared.get(name, {}))
        sources[name] = "--param"
    key_path = ssh_public_key or default_public_key()
    if SSH_KEY_PARAMETER in declared and SSH_KEY_PARAMETER not in values and key_path is not None:
        values[SSH_KEY_PARAMETER] = read_public_key(key_path)
        sources[SSH_KEY_PARAMETER] = str(key_path)
    return InfraInputs(env, template_path, params_path, template, values, sources)


def _file_values(data: Mapping[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    entries = data.get("parameters") or {}
    values = {
        name: entry["value"] for name, entry in entries.items() if isinstance(entry, Mapping) and "value" in entry
    }
    return values, {name: path.name for name in values}


def declared_parameters(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The template's parameter declarations by name (entries that are not objects left out)."""
    params = template.get("parameters") or {}
    return {name: spec for name, spec in params.items() if isinstance(spec, Mapping)}


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs from the command line; `NAME=@FILE` reads the value from a file (one trailing
    newline dropped). An argument is never repeated in a message: it may be a secret typed wrongly."""
    found: dict[str, str] = {}
    for number, pair in enumerate(pairs, start=1):
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--param number {number} is not NAME=VALUE or NAME=@FILE", hint=SECURE_HINT)
        found[name.strip()] = read_param_file(name.strip(), value[1:]) if value.startswith("@") else value
    return found


def read_param_file(name: str, file: str) -> str:
    """The value of `--param NAME=@FILE`: the file's text without its trailing newline."""
    path = Path(file).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--param {name}: cannot read {path}: {exc.strerror}") from None
    return text.removesuffix("\n").removesuffix("\r")


def convert_override(name: str, text: str, spec: Mapping[str, Any]) -> Any:
    """`text` as the type parameter `name` declares."""
    kind = str(spec.get("type", "string")).lower()
    try:
        if kind == "int":
            return int(text)
        if kind == "bool":
            if text.lower() not in {"true", "false"}:
                raise ValueError("expected true or false")
            return text.lower() == "true"
        if kind in {"object", "secureobject", "array"}:
            return json.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise UsageError(f"--param {name}: not a valid {spec.get('type')}: {exc}") from None
    return text


def default_public_key() -> Path | None:
    """The first of `~/.ssh/id_ed25519.pub`, `id_ecdsa.pub`, `id_rsa.pub` that exists."""
    home = Path(os.path.expanduser("~")) / ".ssh"
    return next((home / name for name in DEFAULT_KEYS if (home / name).is_file()), None)


def read_public_key(path: Path) -> str:
    """An OpenSSH public key from `path`; refuses a private key without ever showing its contents."""
    try:
        text = path.expanduser().read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise ConfigError(
            f"SSH public key {path} cannot be read: {exc.strerror}", hint="set azure.ssh_public_key"
        ) from None
    if "PRIVATE KEY" in text:
        raise ConfigError(
            f"{path} is a private key", hint="point azure.ssh_public_key at the public key (the .pub file)"
        )
    if not text.startswith(PUBLIC_KEY_PREFIXES):
        raise ConfigError(
            f"{path} is not an OpenSSH public key", hint="expected a line like 'ssh-ed25519 AAAA... user'"
        )
    return text.splitlines()[0]
