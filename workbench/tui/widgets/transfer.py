"""Progress of a transfer: a bar plus bytes, rate and ETA."""

from __future__ import annotations

from typing import TypeVar

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label, ProgressBar

from services.progress import TransferProgress
from services.units import human_bytes

W = TypeVar("W", bound=Widget)


def transfer_line(progress: TransferProgress) -> str:
    """E.g. "12.3 MB / 45.6 MB · 3.4 MB/s · ETA 10 s"."""
    eta = f"ETA {progress.eta_s:.0f} s" if progress.eta_s is not None else "ETA -"
    done, total = human_bytes(progress.done_bytes), human_bytes(progress.total_bytes)
    return f"{done} / {total} · {human_bytes(progress.bytes_per_s)}/s · {eta}"


class TransferBar(Horizontal):
    """Shows what is transferring and how far along it is."""

    DEFAULT_CSS = """
    TransferBar {
        height: 1;
        & > #transfer-title { width: auto; max-width: 50%; margin-right: 1; text-style: bold; }
        & > ProgressBar { width: auto; margin-right: 1; }
        & > #transfer-stats { width: 1fr; color: $text-muted; }
    }
    """

    def compose(self) -> ComposeResult:
        yield from ()  # the parts come with the first transfer (`_part`): a hidden bar costs one widget

    def _part(self, selector: str, kind: type[W]) -> W:
        """The part matching `selector`, after mounting all of them on first use."""
        if not self.children:
            self.mount(
                Label("", id="transfer-title"),
                ProgressBar(total=1.0, show_eta=False, id="transfer-bar"),
                Label("", id="transfer-stats"),
            )
        return self.query_one(selector, kind)

    def start(self, title: str) -> None:
        """Reset the bar for a new transfer called `title`."""
        self._part("#transfer-title", Label).update(title)
        self._part("#transfer-bar", ProgressBar).update(total=1.0, progress=0.0)
        self.note("starting…")

    def note(self, text: str) -> None:
        """Replace the figures with a short note, e.g. "cancelling…"."""
        self._part("#transfer-stats", Label).update(text)

    def show_fraction(self, fraction: float, text: str) -> None:
        """Progress as a fraction with a line of figures (transfers measured in other units, e.g. layers)."""
        self._part("#transfer-bar", ProgressBar).update(total=1.0, progress=fraction)
        self.note(text)

    def show_progress(self, progress: TransferProgress) -> None:
        self._part("#transfer-bar", ProgressBar).update(total=1.0, progress=progress.fraction)
        self.note(transfer_line(progress))
