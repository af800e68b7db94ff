"""One line of text asked for in a modal screen."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from workbench.tui.keymap import bindings_for


class PromptScreen(ModalScreen[str | None]):
    """Dismisses with the text typed (enter), or None (escape); empty text is not accepted."""

    DEFAULT_CSS = """
    PromptScreen {
        align: center middle;
        & > #dialog {
            width: 70;
            height: auto;
            padding: 1 2;
            border: thick $primary;
            background: $surface;
        }
        & #title { text-style: bold; margin-bottom: 1; }
        & #hint { color: $text-muted; margin-top: 1; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("PromptScreen")

    def __init__(self, title: str, body: str, *, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title")
            yield Static(self.body, id="body", markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Static("enter accepts · esc cancels", id="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#answer")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
