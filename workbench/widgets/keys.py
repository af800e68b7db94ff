"""A modal listing every key binding of the screen it was opened from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static


@dataclass(frozen=True)
class KeyRow:
    """One action and the keys bound to it."""

    keys: str
    description: str
    binding_id: str


def key_rows(active: Iterable[ActiveBinding], key_display: dict[str, str]) -> list[KeyRow]:
    """Rows for the active bindings: one per action, its keys joined, system bindings left out.

    `key_display` maps each key to how it is shown (App.get_key_display).
    """
    merged: dict[tuple[str, str], list[str]] = {}
    ids: dict[tuple[str, str], str] = {}
    for item in active:
        binding = item.binding
        if binding.system or not binding.description:
            continue
        slot = (binding.action, binding.description)
        merged.setdefault(slot, []).append(key_display.get(binding.key, binding.key))
        ids.setdefault(slot, binding.id or "")
    rows = [KeyRow(" / ".join(keys), slot[1], ids[slot]) for slot, keys in merged.items()]
    # Remappable bindings (those with an id) first, generic navigation after.
    return sorted(rows, key=lambda row: not row.binding_id)


class KeysScreen(ModalScreen[None]):
    """Shows `KeyRow`s; escape, q or ? closes it."""

    DEFAULT_CSS = """
    KeysScreen {
        align: center middle;
        & > #keys {
            width: 90;
            height: auto;
            max-height: 90%;
            padding: 1 2;
            border: thick $primary;
            background: $surface;
        }
        & #keys-title { text-style: bold; margin-bottom: 1; }
        & DataTable { height: auto; max-height: 30; }
        & #keys-hint { color: $text-muted; margin-top: 1; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close", id="keys.close")]

    def __init__(self, title: str, rows: list[KeyRow], hint: str = "") -> None:
        super().__init__()
        self.heading = title
        self.rows = rows
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="keys"):
            yield Label(self.heading, id="keys-title")
            yield DataTable(id="keys-table", cursor_type="row", zebra_stripes=True)
            yield Static(self.hint, id="keys-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "Binding id")
        table.add_rows((row.keys, row.description, row.binding_id) for row in self.rows)
