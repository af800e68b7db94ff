"""The Chat tab of the Playground: one or two variants answer the same question, streamed side by side."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, TabbedContent, TabPane
from textual.worker import Worker, get_current_worker

from services.chat.session import Answer, ChatEngine
from services.chat.variant import DEFAULT_TEMPLATE, Variant
from services.errors import UsageError
from services.finetune.adapters import Adapter, list_adapters
from services.playground import (
    CaseRequest,
    PlaygroundSession,
    chat_models,
    demo_suite,
    save_case,
    variant_of,
)
from services.progress import CancelToken
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import Pane
from workbench.tui.screens.playground.modals import ContextScreen, Exchange, SaveCaseScreen
from workbench.tui.screens.playground.variant import VariantForm
from workbench.tui.widgets.transcript import Transcript

COLUMNS = ("a", "b")
EMPTY = (
    "Type a question below and press enter. Pick the model, adapter, template, RAG and generation settings "
    "on the left; ctrl+b compares two variants side by side."
)


def stats_line(answer: Answer) -> str:
    """Latency, time to first token, tokens/s and retrieved chunks of one answer."""
    if answer.error is not None and not answer.tokens:
        return f"no answer after {answer.latency_s:.2f} s"
    ttft = f"{answer.ttft_s:.2f} s" if answer.ttft_s is not None else "-"
    chunks = f" · {len(answer.hits)} chunks" if answer.hits else ""
    return (
        f"{answer.latency_s:.2f} s · first token {ttft} · {answer.tokens} tokens · "
        f"{answer.tokens_per_s:.1f} tokens/s{chunks}"
    )


def case_name(question: str) -> str:
    """A suite case name made from the question's first words."""
    words = "".join(c if c.isalnum() else " " for c in question.lower()).split()
    return "-".join(words[:6]) or "saved-case"


@dataclass(frozen=True)
class Turn:
    """One variant answering one question, with that column's earlier exchanges."""

    column: str
    variant: Variant
    question: str
    history: list[tuple[str, str]] = field(default_factory=list)


class ChatPane(Pane):
    """Variant settings on the left, the transcript (two columns when comparing) and the input on the right."""

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("ChatPane")
    STREAM_EVERY_S = 0.05
    """Shortest time between two transcript updates while tokens stream."""

    @dataclass
    class Choices(Message):
        models: list[str]
        adapters: list[Adapter]

    @dataclass
    class Streamed(Message):
        """The answer of `column` so far; a newer one replaces an unprocessed one."""

        column: str
        text: str

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ChatPane.Streamed) and message.column == self.column

    @dataclass
    class Answered(Message):
        turn: Turn
        answer: Answer

    @dataclass
    class CaseSaved(Message):
        request: CaseRequest

    def __init__(self, session: PlaygroundSession, *, data_dir: Path, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.data_dir = data_dir
        self.cancel_token: CancelToken | None = None
        self.pending: set[str] = set()
        """Columns whose answer is still streaming."""
        self.last: dict[str, Exchange] = {}
        """The latest finished exchange of each column."""
        self.history: dict[str, list[tuple[str, str]]] = {column: [] for column in COLUMNS}
        self.opening: tuple[str, Path] | None = None
        """A (base model, adapter) to select when the choices next arrive (from Fine-tune's "open")."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-main"):
            with VerticalScroll(id="chat-side"):
                with Horizontal(id="chat-compare-row"):
                    yield Label("compare A and B (ctrl+b)", id="chat-compare-label")
                    yield Checkbox("", False, compact=True, id="chat-compare")
                with TabbedContent(id="variant-tabs"):
                    with TabPane("Variant A", id="variant-a"):
                        yield VariantForm("a", template=DEFAULT_TEMPLATE, id="form-a")
                    with TabPane("Variant B", id="variant-b"):
                        yield VariantForm("b", template=DEFAULT_TEMPLATE, id="form-b")
            with Vertical(id="chat-area"):
                with Horizontal(id="chat-columns"):
                    yield Transcript("A", empty=EMPTY, id="transcript-a")
                    yield Transcript("B", id="transcript-b")
                yield Input(placeholder="ask a question (enter sends, esc stops)", id="chat-input")

    @property
    def comparing(self) -> bool:
        return self.query_one("#chat-compare", Checkbox).value

    @property
    def streaming(self) -> bool:
        return self.cancel_token is not None

    def form(self, column: str) -> VariantForm:
        return self.query_one(f"#form-{column}", VariantForm)

    def transcript(self, column: str) -> Transcript:
        return self.query_one(f"#transcript-{column}", Transcript)

    def on_mount(self) -> None:
        self.query_one("#variant-tabs", TabbedContent).disable_tab("variant-b")
        self.reload_choices()

    def reload_choices(self) -> None:
        """List the cached models and the fine-tune adapters again."""
        self.load_choices(self.session.cache_dir, self.data_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="playground-choices", description="List models")
    def load_choices(self, cache_dir: Path, data_dir: Path) -> None:
        self.post_message(self.Choices(chat_models(cache_dir), list_adapters(data_dir)))

    def open_adapter(self, base_model: str, adapter: Path) -> None:
        """Compare `base_model` (A) with it plus `adapter` (B), once the choices list the adapter."""
        self.opening = (base_model, adapter)
        self.query_one("#chat-compare", Checkbox).value = True
        self.reload_choices()

    @on(Choices)
    def _choices(self, event: Choices) -> None:
        had_models = self.form("b").query_one("#b-model", Select).value is not Select.NULL
        for column in COLUMNS:
            self.form(column).set_models(event.models, event.adapters)
        if event.adapters and not had_models:
            # B starts as the base plus the newest adapter: the comparison people make most.
            self.form("b").set_field("adapter", str(event.adapters[0].path))
        self._apply_opening()
        self._show_titles()

    def _apply_opening(self) -> None:
        if self.opening is None:
            return
        base_model, adapter = self.opening
        self.opening = None
        self.form("a").choose(base_model, None)
        self.form("b").choose(base_model, str(adapter))

    def _show_titles(self) -> None:
        for column in COLUMNS:
            self.transcript(column).set_title(self.form(column).describe())

    # ------------------------------------------------------------------ compare

    def action_compare(self) -> None:
        """Show or hide variant B."""
        switch = self.query_one("#chat-compare", Checkbox)
        switch.value = not switch.value

    @on(Checkbox.Changed, "#chat-compare")
    def _compare_changed(self, event: Checkbox.Changed) -> None:
        tabs = self.query_one("#variant-tabs", TabbedContent)
        if event.value:
            tabs.enable_tab("variant-b")
        else:
            tabs.active = "variant-a"
            tabs.disable_tab("variant-b")
        self.set_class(event.value, "-compare")
        self._show_titles()

    # ------------------------------------------------------------------ ask

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.streaming
        if action in {"show_context", "save_case"}:
            return None if self.streaming or not self.last else True
        if action == "clear":
            return not self.streaming
        return True

    def action_focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    @on(Input.Submitted, "#chat-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() and not self.streaming:
            self.ask(event.value.strip())
            event.input.clear()

    def ask(self, question: str) -> bool:
        """Send `question` to variant A (and B when comparing); False when a form is invalid."""
        columns = COLUMNS if self.comparing else COLUMNS[:1]
        try:
            turns = [self._turn(column, question) for column in columns]
        except UsageError as exc:
            self.notify(exc.message, title="Playground", severity="error", markup=False)
            return False
        self._show_titles()
        for turn in turns:
            self.transcript(turn.column).begin(question)
        self.pending = set(columns)
        self.cancel_token = CancelToken()
        self.refresh_bindings()
        self.answer(self.session, turns, self.cancel_token)
        return True

    def _turn(self, column: str, question: str) -> Turn:
        variant = variant_of(self.form(column).values(column.upper()))
        return Turn(column, variant, question, list(self.history[column]))

    @work(thread=True, exclusive=True, exit_on_error=False, group="playground-chat", description="Answer the question")
    def answer(self, session: PlaygroundSession, turns: list[Turn], cancel: CancelToken) -> None:
        if not session.lock.acquire(blocking=False):
            self.post_message(self.Streamed(turns[0].column, "waiting for the suite run to finish…"))
            session.lock.acquire()
        try:
            engine = session.engine()
            for turn in turns:
                if cancel.cancelled or get_current_worker().is_cancelled:
                    return
                self._stream(engine, turn, cancel)
        finally:
            session.lock.release()

    def _stream(self, engine: ChatEngine, turn: Turn, cancel: CancelToken) -> None:
        text, posted = "", 0.0
        for item in engine.stream(turn.variant, turn.question, history=turn.history, cancel=cancel):
            if isinstance(item, Answer):
                self.post_message(self.Answered(turn, item))
                return
            text += item
            if time.monotonic() - posted >= self.STREAM_EVERY_S:
                self.post_message(self.Streamed(turn.column, text))
                posted = time.monotonic()

    @on(Streamed)
    def _streamed(self, event: Streamed) -> None:
        if event.column in self.pending:
            self.transcript(event.column).stream(event.text)

    @on(Answered)
    def _answered(self, event: Answered) -> None:
        answer, column, question = event.answer, event.turn.column, event.turn.question
        self.pending.discard(column)
        transcript = self.transcript(column)
        transcript.finish(answer.text, stats_line(answer), error=answer.error)
        self.last[column] = Exchange(transcript.title_text, question, answer, event.turn.variant.rag is not None)
        if answer.error is None:
            self.history[column].append((question, answer.text))

    @on(Worker.StateChanged)
    def _chat_finished(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "playground-chat" or not event.worker.is_finished:
            return
        for column in sorted(self.pending):
            self.transcript(column).finish("", "stopped", error=None)
        self.pending.clear()
        self.cancel_token = None
        self.refresh_bindings()

    def action_cancel(self) -> None:
        """Stop the answer being generated (the text so far stays)."""
        if self.cancel_token is not None:
            self.cancel_token.cancel()

    def action_clear(self) -> None:
        """Forget the conversation: empty transcripts, no history sent with the next question."""
        for column in COLUMNS:
            self.transcript(column).clear_turns()
            self.history[column].clear()
        self.last.clear()
        self.refresh_bindings()

    # ------------------------------------------------------------------ context, save

    def exchanges(self) -> list[Exchange]:
        """The latest exchange of each column shown."""
        return [self.last[c] for c in COLUMNS if c in self.last and (c == "a" or self.comparing)]

    def action_show_context(self) -> None:
        """Show the prompt each variant sent and the chunks retrieved for it."""
        if self.exchanges():
            self.app.push_screen(ContextScreen(self.exchanges()))

    def action_save_case(self) -> None:
        """Ask where and how to save the latest exchange (of variant A) as a suite case."""
        if "a" not in self.last:
            return
        exchange = self.last["a"]
        modal = SaveCaseScreen(
            suite=demo_suite(self.data_dir),
            name=case_name(exchange.question),
            question=exchange.question,
            answer=exchange.answer.text.strip(),
        )

        def chosen(request: CaseRequest | None) -> None:
            if request is not None:
                self.save(request)

        self.app.push_screen(modal, chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="playground-save", description="Save the case")
    def save(self, request: CaseRequest) -> None:
        save_case(request)
        self.post_message(self.CaseSaved(request))

    @on(CaseSaved)
    def _case_saved(self, event: CaseSaved) -> None:
        self.notify(f"case {event.request.name} appended to {event.request.suite}", title="Playground", markup=False)
