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

from workbench.actions import ACTION_BY_ID
from workbench.tui.keymap import bindings_for
from workbench.tui.widgets.table import Table


@dataclass(frozen=True)
class KeyRow:
    """One action and the keys bound to it."""

    keys: str
    description: str
    binding_id: str


def key_rows(active: Iterable[ActiveBinding], key_display: dict[str, str]) -> list[KeyRow]:
    """Rows for the active bindings: one per action, its keys joined, system bindings left out.

    An action of the registry (`workbench.actions`) is named by its title and id there; Textual's
    own navigation bindings follow, by their description. `key_display` maps each key to how it is
    shown (App.get_key_display); the keys are the active ones, after the user's `[ui] keys`.
    """
    keys: dict[tuple[str, str, str], list[str]] = {}
    for item in active:
        binding = item.binding
        if binding.system or not binding.description:
            continue
        keys.setdefault(_row_slot(binding), []).append(key_display.get(binding.key, binding.key))
    rows = [KeyRow(" / ".join(shown), title, binding_id) for (binding_id, title, _), shown in keys.items()]
    # Remappable bindings (those of the registry) first, generic navigation after.
    return sorted(rows, key=lambda row: not row.binding_id)


def _row_slot(binding: Binding) -> tuple[str, str, str]:
    """(binding id, title, action): the registry's id and title, or Textual's description for its own."""
    action = ACTION_BY_ID.get(binding.id or "")
    if action is not None:
        return action.id, action.title, action.action
    return "", binding.description, binding.action


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

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("KeysScreen")

    def __init__(self, title: str, rows: list[KeyRow], hint: str = "") -> None:
        super().__init__()
        self.heading = title
        self.rows = rows
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="keys"):
            yield Label(self.heading, id="keys-title")
            yield Table(id="keys-table", cursor_type="row", zebra_stripes=True)
            yield Static(self.hint, id="keys-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "Binding id")
        table.add_rows((row.keys, row.description, row.binding_id) for row in self.rows)
