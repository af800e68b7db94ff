"""What every mode needs from the app: settings, the hub connection and test overrides.

Screens reach it through `context_of(self.app)`, so they never import the app module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App

    from services.gpu import Gpu
    from services.hub import HubConnection
    from workbench.settings import Settings


@dataclass(frozen=True)
class WorkbenchContext:
    """Settings and derived objects, built once per app."""

    settings: Settings
    hub: HubConnection
    gpus: list[Gpu] | None = field(default=None)
    """GPUs to assume instead of detecting them (tests, snapshots); None detects."""


def context_of(app: App[Any]) -> WorkbenchContext:
    """The context of a running workbench app."""
    context = getattr(app, "context", None)
    if not isinstance(context, WorkbenchContext):
        raise TypeError(f"{type(app).__name__} is not a workbench app (no WorkbenchContext)")
    return context
