"""The Playground's modals: the exact context sent with an answer, and saving an exchange as a suite case."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from services.chat.session import Answer
from services.playground import ASSERT_KINDS, CaseRequest
from services.rag.types import Hit
from workbench.tui.keymap import bindings_for
from workbench.tui.widgets import short_path
from workbench.tui.widgets.table import Table


@dataclass(frozen=True)
class Exchange:
    """One question and the answer one variant gave."""

    title: str
    question: str
    answer: Answer
    rag: bool
    """Whether the variant had RAG on."""


def hit_rows(hits: list[Hit]) -> list[tuple[str, ...]]:
    """Rank, distance, source, chunk index and a one-line preview of each retrieved chunk."""
    return [
        (str(rank), f"{h.distance:.3f}", short_path(h.source), str(h.chunk_index), " ".join(h.text.split())[:80])
        for rank, h in enumerate(hits, start=1)
    ]


def no_hits_text(exchange: Exchange) -> str:
    if not exchange.rag:
        return "no chunks retrieved (RAG off for this variant)"
    return f"no chunks retrieved: {exchange.answer.error or 'the collection returned none'}"


class ContextScreen(ModalScreen[None]):
    """The prompt each variant sent and the chunks retrieved for it."""

    CSS_PATH = "playground.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("ContextScreen")

    def __init__(self, exchanges: list[Exchange]) -> None:
        super().__init__()
        self.exchanges = exchanges

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="context-dialog"):
            yield Label("The exact context sent (esc closes)", id="context-title")
            for number, exchange in enumerate(self.exchanges):
                yield Label(f"{exchange.title} · {exchange.question}", classes="context-head")
                yield Static(exchange.answer.prompt, classes="context-prompt", markup=False)
                table = Table(id=f"context-hits-{number}", classes="context-hits", cursor_type="row", show_cursor=False)
                table.add_columns("#", "distance", "source", "chunk", "text")
                table.add_rows(hit_rows(exchange.answer.hits))
                if exchange.answer.hits:
                    yield table
                else:
                    yield Static(no_hits_text(exchange), classes="context-none", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


class SaveCaseScreen(ModalScreen[CaseRequest | None]):
    """Asks for the suite file, the case name and the assertion; dismisses with the request or None."""

    CSS_PATH = "playground.tcss"
    """Read when a screen of this mode is first shown: off the app's start path."""
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("SaveCaseScreen")

    def __init__(self, *, suite: Path, name: str, question: str, answer: str) -> None:
        super().__init__()
        self.suite, self.case_name, self.question, self.answer = suite, name, question, answer

    def compose(self) -> ComposeResult:
        with Vertical(id="save-dialog"):
            yield Label("Save the exchange as a suite case", id="save-title")
            yield Static(f"» {self.question}", id="save-question", markup=False)
            with Horizontal(classes="save-row"):
                yield Label("suite file", classes="save-label")
                yield Input(short_path(self.suite), compact=True, id="save-path")
            with Horizontal(classes="save-row"):
                yield Label("case name", classes="save-label")
                yield Input(self.case_name, compact=True, id="save-name")
            with Horizontal(classes="save-row"):
                yield Label("assertion", classes="save-label")
                yield Select(ASSERT_KINDS, value="icontains", allow_blank=False, compact=True, id="save-kind")
            with Horizontal(classes="save-row"):
                yield Label("expected", classes="save-label")
                yield Input(self.answer, compact=True, id="save-value")
            with Horizontal(id="save-buttons"):
                yield Button("Save (enter)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save-name", Input).focus()

    def request(self) -> CaseRequest:
        kind = self.query_one("#save-kind", Select).value
        return CaseRequest(
            suite=Path(self.query_one("#save-path", Input).value.strip()).expanduser(),
            name=self.query_one("#save-name", Input).value.strip(),
            question=self.question,
            kind=str(kind),
            expected=self.query_one("#save-value", Input).value,
        )

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self.dismiss(self.request())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
