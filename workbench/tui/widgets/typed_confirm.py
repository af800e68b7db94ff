"""A destructive action confirmed by typing a name, as a modal screen."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from workbench.tui.keymap import bindings_for


class TypedConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only after `expected` is typed exactly; escape or Cancel dismiss with False."""

    DEFAULT_CSS = """
    TypedConfirmScreen {
        align: center middle;
        & > #dialog {
            width: 80;
            height: auto;
            padding: 1 2;
            border: thick $error;
            background: $surface;
        }
        & #title { text-style: bold; margin-bottom: 1; }
        & #typed { margin-top: 1; }
        & #buttons { height: auto; margin-top: 1; align-horizontal: right; }
        & Button { margin-left: 2; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("TypedConfirmScreen")

    def __init__(self, title: str, body: str, expected: str, *, confirm_label: str = "Delete") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.expected = expected
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title")
            yield Static(self.body, id="body", markup=False)
            yield Input(placeholder=self.expected, id="typed")
            with Horizontal(id="buttons"):
                yield Button(self.confirm_label, variant="error", id="confirm", disabled=True)
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Changed, "#typed")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value != self.expected

    @on(Input.Submitted, "#typed")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value == self.expected:
            self.dismiss(True)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.query_one(Input).value == self.expected:
            self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
