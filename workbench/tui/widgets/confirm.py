"""A yes/no question as a modal screen."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from workbench.tui.keymap import bindings_for


class ConfirmScreen(ModalScreen[bool]):
    """Asks before an action; dismisses with True to go ahead, False to cancel."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
        & > #dialog {
            width: 76;
            height: auto;
            padding: 1 2;
            border: thick $primary;
            background: $surface;
        }
        &.-danger > #dialog { border: thick $error; }
        & #title { text-style: bold; margin-bottom: 1; }
        & #buttons { height: auto; margin-top: 1; align-horizontal: right; }
        & Button { margin-left: 2; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("ConfirmScreen")

    def __init__(self, title: str, body: str, *, confirm_label: str = "Confirm", danger: bool = False) -> None:
        super().__init__(classes="-danger" if danger else None)
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title")
            yield Static(self.body, id="body", markup=False)
            with Horizontal(id="buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error" if self.danger else "primary", id="confirm")
                yield Button("Cancel (n)", id="cancel")

    def on_mount(self) -> None:
        # A destructive action starts on Cancel so that a stray Enter does no harm.
        self.query_one("#cancel" if self.danger else "#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
