"""Progress of a transfer: a bar plus bytes, rate and ETA."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from services.progress import TransferProgress
from services.units import human_bytes


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
        yield Label("", id="transfer-title")
        yield ProgressBar(total=1.0, show_eta=False, id="transfer-bar")
        yield Label("", id="transfer-stats")

    def start(self, title: str) -> None:
        """Reset the bar for a new transfer called `title`."""
        self.query_one("#transfer-title", Label).update(title)
        self.query_one(ProgressBar).update(total=1.0, progress=0.0)
        self.note("starting…")

    def note(self, text: str) -> None:
        """Replace the figures with a short note, e.g. "cancelling…"."""
        self.query_one("#transfer-stats", Label).update(text)

    def show_fraction(self, fraction: float, text: str) -> None:
        """Progress as a fraction with a line of figures (transfers measured in other units, e.g. layers)."""
        self.query_one(ProgressBar).update(total=1.0, progress=fraction)
        self.note(text)

    def show_progress(self, progress: TransferProgress) -> None:
        self.query_one(ProgressBar).update(total=1.0, progress=progress.fraction)
        self.query_one("#transfer-stats", Label).update(transfer_line(progress))
