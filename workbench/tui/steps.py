"""The app's phrasing of a service error's next step (`services.errors.NextStep`): where to go, what to press.

Services say which verb helps and with what arguments; this table says where in the app that is: the
mode (and tab) to open and the actions to run there, all by binding id of `workbench.actions`. Keys are
read from the registry and the user's `[ui] keys`, so a remapped key is named as remapped.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.keys import format_key

from services.errors import NextStep, WorkbenchError
from workbench.actions import ACTION_BY_ID


@dataclass(frozen=True)
class Place:
    """Where in the app a verb's remedy is, and what to press there."""

    text: str
    """What to do, with `{argument}` fields from the step: `"download {repo}"`."""
    at: tuple[str, ...]
    """Binding ids that lead there, in order: the mode's switch (`mode.models`), then a tab (`models.hub`)."""
    press: tuple[str, ...] = ()
    """Binding ids of the actions that do it there; none: looking there is the remedy."""
    choice: bool = False
    """Press one of `press` (`l or r`) instead of each in turn (`/, then d`)."""

    def binding_ids(self) -> tuple[str, ...]:
        return (*self.at, *self.press)


MODELS_HUB = ("mode.models", "models.hub")
COLLECTIONS = ("mode.playground", "playground.collections")
SUITES = ("mode.playground", "playground.suites")

PLACES: Mapping[str, Place] = {
    "models.download": Place("download {repo}", MODELS_HUB, ("models.search", "models.download")),
    "models.ls": Place("see the cached models", ("mode.models", "models.local")),
    "models.search": Place("search the Hub for it", MODELS_HUB, ("models.search",)),
    "finetune.ls": Place("see the jobs", ("mode.finetune",)),
    "rag.ls": Place("see the collections", COLLECTIONS),
    "rag.rm": Place("remove {name}", COLLECTIONS, ("playground.delete-collection",)),
    "rag.query_model": Place("set rag.embedding_model to the model that made {name}, then query it", COLLECTIONS),
    "eval.show": Place("run the suite to see which cases fail (gate run {run_id})", SUITES, ("playground.run-suite",)),
    "eval.ls": Place("run a suite", SUITES, ("playground.run-suite",)),
    "artifacts.show": Place("see the versions and labels of {name}", ("mode.artifacts",)),
    "artifacts.ls": Place(
        "see the artifacts", ("mode.artifacts",), ("artifacts.workspace", "artifacts.remote"), choice=True
    ),
    "artifacts.label": Place(
        "highlight another version and point {label} at it", ("mode.artifacts",), ("artifacts.label",)
    ),
    "artifacts.rm_remote": Place(
        "delete {ref} from remote storage", ("mode.artifacts", "artifacts.remote"), ("artifacts.delete",)
    ),
    "image.build": Place("build {app}", ("mode.images",), ("images.build",)),
    "infra.up": Place("deploy the environment", ("mode.infra",), ("infra.up",)),
    "infra.validate": Place("see every problem", ("mode.infra",), ("infra.validate",)),
    "deploy.status": Place("see the releases", ("mode.deploy",)),
    "deploy.lock_status": Place(
        "deploy {app} again: it names who holds the lock", ("mode.deploy",), ("deploy.deploy",)
    ),
    "deploy.lock_release": Place(
        "deploy {app} again and clear the lock when asked", ("mode.deploy",), ("deploy.deploy",)
    ),
}
"""Verb → where in the app it is done."""


class _Placeholders(dict[str, str]):
    """The step's arguments; a missing one reads as its name in capitals."""

    def __missing__(self, key: str) -> str:
        return key.upper()


def key_of(binding_id: str, keymap: Mapping[str, str] | None = None) -> str:
    """How the first key of a binding shows, after the user's `[ui] keys` (`slash` → `/`, `ctrl+g`)."""
    keys = (keymap or {}).get(binding_id) or ACTION_BY_ID[binding_id].keys
    first = keys.split(",")[0].strip()
    *modifiers, key = first.split("+")
    return "+".join([*modifiers, format_key(key)])


def where(place: Place, keymap: Mapping[str, str] | None = None) -> str:
    """`Models (1) › Hub (h)`: the mode and tab a place is in, each with its key."""
    return " › ".join(f"{ACTION_BY_ID[i].title} ({key_of(i, keymap)})" for i in place.at)


def phrase(step: NextStep, keymap: Mapping[str, str] | None = None) -> str:
    """The step as what to do in the app: `download acme/x: in Models (1) › Hub (h), press / (Search), then d …`."""
    place = PLACES.get(step.verb)
    if place is None:
        return f"next: {step.verb}" + "".join(f" {name}={value}" for name, value in step.args)
    text = string.Formatter().vformat(place.text, (), _Placeholders(step.args))
    if not place.press:
        return f"{text} in {where(place, keymap)}"
    pressed = [f"{key_of(i, keymap)} ({ACTION_BY_ID[i].title})" for i in place.press]
    keys = " or ".join(pressed) if place.choice else ", then ".join(pressed)
    return f"{text}: in {where(place, keymap)}, press {keys}"


def error_text(error: WorkbenchError, keymap: Mapping[str, str] | None = None) -> str:
    """What happened, the hint, and the next step phrased for the app: one line each."""
    lines = [error.message, error.hint, phrase(error.step, keymap) if error.step else None]
    return "\n".join(line for line in lines if line)


def keymap_of(app: App[Any]) -> Mapping[str, str]:
    """The user's `[ui] keys` of a running workbench app (empty for any other app)."""
    settings = getattr(app, "settings", None)
    ui = getattr(settings, "ui", None)
    keys = getattr(ui, "keys", None)
    return keys if isinstance(keys, Mapping) else {}
