"""The per-invocation state every CLI command receives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from services.hub import HubConnection
    from workbench.settings import Layer, Settings


class Context:
    """Per-invocation state: settings are loaded on first use so their errors reach the handler."""

    def __init__(self, debug: bool, config_file: Path | None) -> None:
        self.debug = debug
        self.config_file = config_file
        self._loaded: tuple[Settings, list[Layer]] | None = None

    def loaded(self) -> tuple[Settings, list[Layer]]:
        from workbench.settings import PROJECT_FILE, load_with_layers

        if self._loaded is None:
            self._loaded = load_with_layers(project_file=self.config_file or PROJECT_FILE)
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded()[0]

    def hub(self) -> HubConnection:
        from workbench.settings import hub_connection

        return hub_connection(self.settings)

    def cache_dir(self) -> Path:
        return self.hub().cache_path


pass_context = click.make_pass_decorator(Context)
