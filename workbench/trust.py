"""Trust of project files: a cloned `./workbench.toml` routes no secret until the user trusts it.

Like an editor's workspace trust: the decision is recorded in the user's config folder
(`trusted-projects.json` beside the user settings file), keyed by the project file's absolute
path with the sha256 of its contents; a changed file is unknown again and is asked about again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from services.errors import ConfigError
from services.files import write_atomic

STORE_NAME = "trusted-projects.json"

State = Literal["trusted", "declined", "unknown"]


@dataclass(frozen=True)
class ProjectTrust:
    """A project file whose secret-routing keys were ignored, and where its trust is recorded."""

    path: Path
    digest: str
    store: Path
    ignored: tuple[str, ...]
    declined: bool = False
    """The user already said no to these exact contents (the TUI does not ask again)."""

    def decide(self, trusted: bool) -> None:
        """Record the user's answer for these exact contents."""
        record(self.path, self.digest, self.store, trusted=trusted)


def store_beside(user_file: Path) -> Path:
    """The trust record that belongs to a user settings file (same folder)."""
    return user_file.parent / STORE_NAME


def digest_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _key(path: Path) -> str:
    return str(path.expanduser().absolute())


def read_store(store: Path) -> dict[str, dict[str, Any]]:
    """The recorded decisions by absolute path ({} when there is no record yet)."""
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{store}: cannot be read ({exc})", hint="fix or delete the file") from None
    return data if isinstance(data, dict) else {}


def state_of(path: Path, digest: str, store: Path) -> State:
    """Whether the file with these contents was trusted, declined, or never decided."""
    entry = read_store(store).get(_key(path))
    if not isinstance(entry, dict) or entry.get("sha256") != digest:
        return "unknown"
    return "trusted" if entry.get("trusted") is True else "declined"


def record(path: Path, digest: str, store: Path, *, trusted: bool) -> None:
    """Record the user's decision about these exact contents of the file."""
    entries = read_store(store)
    entries[_key(path)] = {"sha256": digest, "trusted": trusted}
    _write(store, entries)


def revoke(path: Path, store: Path) -> bool:
    """Forget any decision about the file; False when there was none."""
    entries = read_store(store)
    if entries.pop(_key(path), None) is None:
        return False
    _write(store, entries)
    return True


def _write(store: Path, entries: dict[str, dict[str, Any]]) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(store, json.dumps(entries, indent=2, sort_keys=True) + "\n")


def warning_line(trust: ProjectTrust) -> str:
    """The one line the CLI prints when a project file's keys were ignored."""
    keys = ", ".join(trust.ignored)
    return f"warning: {trust.path} is not trusted, ignored: {keys}; run `workbench trust` to allow them"


def question_text(trust: ProjectTrust) -> str:
    """The body of the TUI's trust question."""
    keys = "\n".join(f"  {key}" for key in trust.ignored)
    return (
        f"{trust.path} comes with the project and sets keys that send secrets or choose what is trusted:\n"
        f"{keys}\n\nThey are ignored until you trust this exact file (asked again when it changes). "
        "Trusting starts the workbench again with them."
    )
