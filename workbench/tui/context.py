"""What every mode needs from the app: the composition root (settings and service clients).

Screens reach it through `context_of(self.app)`, so they never import the app module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App

    from services.gpu import Gpu
    from services.hub.connection import HubConnection
    from workbench.settings import Settings
    from workbench.wiring import Services


@dataclass(frozen=True)
class WorkbenchContext:
    """The app's `Services`, built once per app (tests hand in their own)."""

    services: Services

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def hub(self) -> HubConnection:
        return self.services.hub

    @property
    def gpus(self) -> list[Gpu] | None:
        """GPUs to assume instead of detecting them (tests, snapshots); None detects."""
        return self.services.gpus


def context_of(app: App[Any]) -> WorkbenchContext:
    """The context of a running workbench app."""
    context = getattr(app, "context", None)
    if not isinstance(context, WorkbenchContext):
        raise TypeError(f"{type(app).__name__} is not a workbench app (no WorkbenchContext)")
    return context
