"""One line at the bottom of every mode: workspace, hub and its state, GPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

HubState = Literal["checking", "online", "offline"]


def short_path(path: Path | str) -> str:
    """`path` with the home folder shown as `~`."""
    text, home = str(path), str(Path.home())
    if home != "/" and (text == home or text.startswith(home + "/")):
        return "~" + text[len(home) :]
    return text


@dataclass(frozen=True)
class StatusInfo:
    """What the status bar shows."""

    workspace: str
    hub: str
    hub_state: HubState = "checking"
    gpu: str = "detecting GPU…"


HUB_STATE_MARKUP: dict[HubState, str] = {
    "checking": "[$text-muted]◌ checking[/]",
    "online": "[$success]● online[/]",
    "offline": "[$error]● offline[/]",
}


class StatusBar(Widget):
    """Shows a `StatusInfo`; set `info` to update it."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    info: reactive[StatusInfo | None] = reactive(None)
    """The status to show; None shows nothing."""

    def render(self) -> Content:
        info = self.info
        if info is None:
            return Content("")
        return Content.from_markup(
            "[b]workspace[/b] $workspace  │  [b]hub[/b] $hub " + HUB_STATE_MARKUP[info.hub_state] + "  │  $gpu",
            workspace=info.workspace,
            hub=info.hub,
            gpu=info.gpu,
        )
