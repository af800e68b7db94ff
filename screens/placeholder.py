"""A mode that is not built yet: says what it will do, and does nothing it cannot do."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from screens.base import ModeScreen
from screens.catalog import MODE_BY_ID, Mode


def placeholder_text(mode: Mode) -> Content:
    """The description a not-yet-built mode shows."""
    plans = "\n".join(f"  • {plan}" for plan in mode.plans)
    return Content.from_markup(
        "[b]$title[/b]\n\n$summary\n\n[$warning]Not built yet.[/] When it is, this mode will:\n\n$plans\n\n"
        "[$text-muted]Until then nothing here acts; the other modes work today. "
        "ctrl+p lists every command and ? every key.[/]",
        title=mode.title,
        summary=mode.summary,
        plans=plans,
    )


class PlaceholderScreen(ModeScreen):
    """The screen of a mode that is still to come."""

    def __init__(self, mode_id: str) -> None:
        super().__init__(mode_id)
        self.mode = MODE_BY_ID[mode_id]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(classes="placeholder"):
            yield Static(placeholder_text(self.mode), classes="placeholder-text")
