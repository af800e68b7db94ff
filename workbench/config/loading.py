"""Loading settings: defaults, `./workbench.toml`, the user file and the environment, in that order.

Precedence, lowest first: built-in defaults, `./workbench.toml` (the team's shared file), the user
file under the XDG config dir, then `WORKBENCH_*` environment variables (sections nest with `__`,
e.g. `WORKBENCH_HUB__ENDPOINT`). Nothing reads configuration at import time: `load_settings()` is
the one factory, shared by the CLI, the TUI and the tests.

A project file comes with a cloned repository, so its keys that route secrets or trust
(`SECRET_ROUTING`) are dropped until the user trusts that exact file (`workbench.trust`); the
dropped keys stay on the project layer as `ignored` so the front-ends can say which and why.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from services.errors import ConfigError
from workbench import locations, trust
from workbench.actions import validate_keymap
from workbench.config.schema import ENV_NESTED_DELIMITER, ENV_PREFIX, PROJECT_FILE, SECRET_ROUTING, Settings
from workbench.trust import ProjectTrust

SECTION_PREFIXES = tuple(f"{ENV_PREFIX}{section.upper()}" for section in Settings.model_fields)
"""What a variable that sets a section's key starts with (`WORKBENCH_HUB__TIMEOUT`); other `WORKBENCH_*`
variables (the test bed's addresses) are not settings."""


@dataclass(frozen=True)
class Layer:
    """One source of settings values, in precedence order."""

    name: str
    values: dict[str, Any]
    ignored: dict[str, Any] = field(default_factory=dict)
    """Dotted key to value: what an untrusted project file set and the loader dropped."""
    untrusted: ProjectTrust | None = None
    """Set on an untrusted project file that had secret-routing keys."""
    unfiltered: dict[str, Any] | None = None
    """The untrusted file's values before dropping: still checked, so a bad value is reported either way."""


def load_settings(
    *,
    project_file: Path | None = PROJECT_FILE,
    user_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings; raise `ConfigError` naming the file and key on bad input."""
    return _build(_layers(project_file, user_file, environ))[0]


def untrusted_project(layers: list[Layer]) -> ProjectTrust | None:
    """The project file whose secret-routing keys were ignored, if any."""
    return next((layer.untrusted for layer in layers if layer.untrusted is not None), None)


def load_with_layers(
    *,
    project_file: Path | None = PROJECT_FILE,
    user_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, list[Layer]]:
    """Like `load_settings`, also returning the layers so a caller can say where a value came from."""
    return _build(_layers(project_file, user_file, environ))


def _layers(project_file: Path | None, user_file: Path | None, environ: Mapping[str, str] | None) -> list[Layer]:
    user_file = user_file if user_file is not None else locations.user_config_file()
    layers = []
    if project_file is not None and project_file.is_file():
        layers.append(_project_layer(project_file, trust.store_beside(user_file)))
    if user_file.is_file():
        layers.append(Layer(str(user_file), read_toml(user_file)))
    layers.append(Layer("environment", _env_values(environ)))
    return layers


def _project_layer(path: Path, store: Path) -> Layer:
    """The project file's values; secret-routing ones only when this exact content is trusted."""
    content = _read_bytes(path)
    values = parse_toml(path, content)
    digest = trust.digest_of(content)
    state = trust.state_of(path, digest, store)
    if state == "trusted":
        return Layer(str(path), values)
    unfiltered = copy.deepcopy(values)
    ignored = drop_secret_routing(values)
    found = ProjectTrust(path.absolute(), digest, store, tuple(ignored), state == "declined") if ignored else None
    return Layer(str(path), values, ignored, found, unfiltered if ignored else None)


def drop_secret_routing(values: dict[str, Any]) -> dict[str, Any]:
    """Remove the `SECRET_ROUTING` keys from `values` in place; return them flattened (dotted key: value)."""
    dropped: dict[str, Any] = {}
    for dotted in SECRET_ROUTING:
        *parents, leaf = dotted.split(".")
        node: Any = values
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            dropped |= _flatten(dotted, node.pop(leaf))
    return dropped


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        return {key: v for name, item in value.items() for key, v in _flatten(f"{prefix}.{name}", item).items()}
    return {prefix: value}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None


def read_toml(path: Path) -> dict[str, Any]:
    return parse_toml(path, _read_bytes(path))


def parse_toml(path: Path, content: bytes) -> dict[str, Any]:
    """A settings file's values (sections checked); `ConfigError` naming `path` on bad TOML."""
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the file's syntax") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        known = ", ".join(Settings.model_fields)
        raise ConfigError(f"{path}: unknown section '{unknown[0]}'", hint=f"expected one of: {known}")
    return data


def _env_values(environ: Mapping[str, str] | None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    if not any(name.upper().startswith(SECTION_PREFIXES) for name in env):
        return {}  # the usual start: pydantic-settings (~10 ms to import) is not needed
    from pydantic_settings.sources import EnvSettingsSource

    source = EnvSettingsSource(
        Settings,  # type: ignore[arg-type]  # a plain model: the source reads its fields, not its config
        case_sensitive=False,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
    )
    source.env_vars = {name.lower(): value for name, value in env.items()}
    try:
        return source()
    except Exception as exc:  # pydantic-settings raises SettingsError on malformed JSON values
        raise ConfigError(f"environment: {exc}", hint=f"check the {ENV_PREFIX}* variables") from None


def merge_values(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(layers: list[Layer]) -> tuple[Settings, list[Layer]]:
    if any(layer.unfiltered is not None for layer in layers):
        _validate([replace(layer, values=layer.unfiltered or layer.values) for layer in layers])
    return _validate(layers), layers


def _validate(layers: list[Layer]) -> Settings:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge_values(merged, layer.values)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise config_error(exc, layers) from None
    validate_keymap(settings.ui.keys, origin=source_of(("ui", "keys"), layers))
    return settings


def config_error(exc: ValidationError, layers: list[Layer]) -> ConfigError:
    first = exc.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    key = ".".join(loc)
    origin = source_of(loc, layers)
    if origin == "environment":
        origin = f"environment {ENV_PREFIX}{'__'.join(loc).upper()}"
    got = f" (got {first['input']!r})" if first["type"] != "extra_forbidden" else ""
    reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].lower()
    return ConfigError(f"{origin}: {key}: {reason}{got}", hint=_expected(loc))


def _expected(loc: tuple[str, ...]) -> str:
    from workbench.config.docs import field_doc  # the docstrings are read on this error path only

    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type):
            return "see `workbench config show`"
        model = field.annotation
    field = model.model_fields.get(loc[-1])
    if field is None:
        return f"known keys: {', '.join(model.model_fields)}"
    return f"expected {_type_name(field.annotation)}: {field_doc(model, loc[-1])}".strip()


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def source_of(loc: tuple[str, ...], layers: list[Layer]) -> str:
    """Name of the highest-precedence layer that sets the value at `loc`, or "default"."""
    for layer in reversed(layers):
        node: Any = layer.values
        for part in loc:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            return layer.name
    return "default"
