"""A DataTable that draws its lines again once new rows have widened its columns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class Table(DataTable[Any]):
    """`DataTable` without stale lines after rows arrive.

    DataTable measures new rows when it is next idle, but keeps the lines it drew before that under the
    same cache key. In a table whose size the rows do not change (no resize redraws it), a line drawn
    between `add_row` and the idle stays at the old column widths, cut short, until something else
    changes, such as the cursor. Textual is pinned: this relies on its `_update_dimensions` and
    `_update_count`.
    """

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        widths = [column.content_width for column in self.columns.values()]
        super()._update_dimensions(new_rows)
        if widths != [column.content_width for column in self.columns.values()]:
            self._update_count += 1  # a new key for every cached line, row and cell
