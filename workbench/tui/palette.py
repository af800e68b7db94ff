"""Command palette commands, titled "area: verb", made from the action registry (`workbench.actions`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from workbench.actions import Action, palette_actions


@dataclass(frozen=True)
class Command:
    """A command palette entry: `action` runs on the app."""

    title: str
    help: str
    action: str
    binding_id: str
    """The registry action it runs (`workbench.actions.ACTION_BY_ID`)."""


def command_of(action: Action) -> Command:
    """The palette entry of an action that has a `palette` verb."""
    return Command(action.palette_title, action.description, action.command, action.id)


COMMANDS: tuple[Command, ...] = tuple(command_of(action) for action in palette_actions())


class WorkbenchCommands(Provider):
    """The workbench's own commands (Textual's system commands stay alongside)."""

    def _runner(self, command: Command) -> Callable[[], object]:
        return partial(self.app.run_action, command.action)

    async def discover(self) -> Hits:
        for command in COMMANDS:
            yield DiscoveryHit(command.title, self._runner(command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in COMMANDS:
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), self._runner(command), help=command.help)
