"""The per-invocation state every CLI command receives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from services.hub.connection import HubConnection
    from workbench.settings import Layer, Settings
    from workbench.wiring import Services


class Context:
    """Per-invocation state: settings are loaded on first use so their errors reach the handler.

    `services`: the composition root to use (tests hand in one with fakes); default: built from the
    settings on first use.
    """

    def __init__(self, debug: bool, config_file: Path | None, *, services: Services | None = None) -> None:
        self.debug = debug
        self.config_file = config_file
        self._loaded: tuple[Settings, list[Layer]] | None = None
        self._services = services
        self._services_given = services is not None

    def loaded(self) -> tuple[Settings, list[Layer]]:
        from workbench.settings import PROJECT_FILE, load_with_layers

        if self._loaded is None:
            self._loaded = load_with_layers(project_file=self.config_file or PROJECT_FILE)
            _warn_untrusted(self._loaded[1])
        return self._loaded

    def reload(self) -> tuple[Settings, list[Layer]]:
        """Settings and layers read anew (the files may have changed, or their trust)."""
        self._loaded = None
        if not self._services_given:
            self._services = None
        return self.loaded()

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def services(self) -> Services:
        """Every service client, built from the settings once per invocation."""
        from workbench.wiring import Services

        if self._services is None:
            self._services = Services(self.loaded()[0])
        return self._services

    def hub(self) -> HubConnection:
        return self.services.hub

    def cache_dir(self) -> Path:
        return self.services.cache_dir


pass_context = click.make_pass_decorator(Context)


def _warn_untrusted(layers: list[Layer]) -> None:
    """One line on stderr naming the project file's ignored keys and how to allow them."""
    from workbench.settings import untrusted_project
    from workbench.trust import warning_line

    project = untrusted_project(layers)
    if project is not None:
        click.echo(warning_line(project), err=True)
