"""TransferBar: one widget until the first transfer, then its title, bar and figures."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Label, ProgressBar

from services.progress import TransferProgress
from workbench.tui.widgets import TransferBar


class Holder(App[None]):
    def compose(self) -> ComposeResult:
        yield TransferBar(id="bar")


def text(bar: TransferBar, selector: str) -> str:
    return str(bar.query_one(selector, Label).render())


async def test_parts_come_with_the_first_transfer_and_show_it() -> None:
    app = Holder()
    async with app.run_test() as pilot:
        bar = app.query_one(TransferBar)
        assert not bar.children
        bar.start("model (esc cancels)")  # at once, before the parts are mounted
        bar.show_progress(TransferProgress(done_bytes=250, total_bytes=1000, bytes_per_s=50.0, eta_s=15.0))
        await pilot.pause()
        assert text(bar, "#transfer-title") == "model (esc cancels)"
        assert text(bar, "#transfer-stats") == "250 B / 1.0 KB · 50 B/s · ETA 15 s"
        assert bar.query_one(ProgressBar).percentage == 0.25
        bar.show_fraction(1.0, "done")
        await pilot.pause()
        assert len(bar.children) == 3 and text(bar, "#transfer-stats") == "done"
        assert bar.query_one(ProgressBar).percentage == 1.0
