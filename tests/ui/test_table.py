"""The workbench's DataTable draws rows again once they have widened its columns."""

from __future__ import annotations

from textual.app import App, ComposeResult

from workbench.tui.widgets.table import Table

NAME = "mistralai/whisper-tiny-00027"


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        table = Table(cursor_type="row")
        table.styles.height = 10  # fixed: new rows leave its size as it is, so no resize redraws it
        yield table


async def test_a_row_drawn_before_it_was_measured_is_drawn_again_at_the_new_widths() -> None:
    app = OneTable()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(Table)
        table.add_columns("Model", "Task")
        await pilot.pause()
        for index in range(20):
            table.add_row(NAME, "automatic-speech-recognition", key=str(index))
        assert NAME not in table.render_line(1).text  # drawn (as a busy screen may) before the idle measures it
        await pilot.pause()
        # A plain DataTable kept the line drawn at the header's width: "mistr".
        assert NAME in table.render_line(1).text
