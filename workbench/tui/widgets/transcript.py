"""A chat transcript: questions, answers that grow as tokens stream in, and a stats line per answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Label, Static


class Transcript(VerticalScroll):
    """One column of a conversation; `begin` a turn, `stream` its text so far, `finish` it."""

    DEFAULT_CSS = """
    Transcript {
        height: 1fr;
        padding: 0 1;
        & > .transcript-title { text-style: bold; color: $accent; width: 1fr; }
        & > .transcript-question { margin-top: 1; color: $text; text-style: bold; }
        & > .transcript-answer { color: $text; }
        & > .transcript-answer.-streaming { color: $text-muted; }
        & > .transcript-error { color: $error; }
        & > .transcript-stats { color: $text-muted; text-style: italic; }
        & > .transcript-empty { color: $text-muted; margin-top: 1; }
    }
    """

    def __init__(self, title: str, *, empty: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.empty_text = empty
        self.turns = 0
        """Turns begun so far."""
        self._answer: Static | None = None

    def compose(self) -> ComposeResult:
        yield Label(self.title_text, classes="transcript-title")
        yield Static(self.empty_text, classes="transcript-empty", markup=False)

    def set_title(self, title: str) -> None:
        self.title_text = title
        self.query_one(".transcript-title", Label).update(title)

    def begin(self, question: str) -> None:
        """Show `question` and an empty answer that `stream` fills."""
        self.query(".transcript-empty").remove()
        self.turns += 1
        self._answer = Static("…", classes="transcript-answer -streaming", markup=False)
        self.mount_all([Static(f"» {question}", classes="transcript-question", markup=False), self._answer])
        self.scroll_end(animate=False)

    def stream(self, text: str) -> None:
        """The answer of the current turn so far."""
        if self._answer is not None:
            self._answer.update(text or "…")
            self.scroll_end(animate=False)

    def finish(self, text: str, stats: str, *, error: str | None = None) -> None:
        """End the current turn with its final text and a stats line (or the error that stopped it)."""
        if self._answer is not None:
            self._answer.update(text or ("" if error else "(empty answer)"))
            self._answer.remove_class("-streaming")
        extra = [Static(error, classes="transcript-error", markup=False)] if error else []
        self.mount_all([*extra, Static(stats, classes="transcript-stats", markup=False)])
        self._answer = None
        self.scroll_end(animate=False)

    def clear_turns(self) -> None:
        """Remove every turn and show the empty text again."""
        self.query(".transcript-question, .transcript-answer, .transcript-error, .transcript-stats").remove()
        self.turns, self._answer = 0, None
        self.mount(Static(self.empty_text, classes="transcript-empty", markup=False))
