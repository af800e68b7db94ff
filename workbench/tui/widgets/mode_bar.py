"""The row of modes at the top of every screen, with the key that switches to each."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget


class ModeBar(Widget):
    """Titles of the modes with their keys; the active one highlighted."""

    DEFAULT_CSS = """
    ModeBar {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    active: reactive[str] = reactive("")
    """Id of the active mode."""

    keys: reactive[dict[str, str]] = reactive(dict, always_update=True)
    """Mode id to the key display that switches to it."""

    def __init__(self, title: str, modes: list[tuple[str, str]], *, id: str | None = None) -> None:
        """`modes` are (mode id, title) pairs in display order."""
        super().__init__(id=id)
        self.title = title
        self.modes = modes

    def render(self) -> Content:
        parts: list[Content | str | tuple[str, str]] = [(self.title, "bold $accent"), "   "]
        for mode_id, title in self.modes:
            key = self.keys.get(mode_id, "")
            label = f" {key} {title} " if key else f" {title} "
            parts.append((label, "reverse bold" if mode_id == self.active else "$text-muted"))
            parts.append(" ")
        return Content.assemble(*parts)
