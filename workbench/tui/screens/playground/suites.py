"""The Suites tab of the Playground: run a prompt suite and watch its cases x variants matrix fill in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Static
from textual.worker import Worker

from services.evals.runner import CaseResult, EvalRun, run_suite
from services.evals.suite import Case, Suite, load_suite
from services.playground import PlaygroundSession, demo_suite
from services.progress import CancelToken
from workbench.tui.keymap import bindings_for
from workbench.tui.screens.base import Pane
from workbench.tui.widgets import short_path
from workbench.tui.widgets.table import Table

PENDING = Text("·", style="dim")
SKIPPED = Text("-", style="dim")
PASS = Text("✓ pass", style="bold green")
FAIL = Text("✗ fail", style="bold red")
NO_RESULT = "Run the suite (enter in the path box, or ctrl+r); then move over the matrix to see a case."


def result_detail(result: CaseResult) -> str:
    """Verdict, failing assertions, the answer and the context sent for one case and variant."""
    answer = result.answer
    verdict = "PASS" if result.passed else "FAIL"
    lines = [f"{result.case} × {result.variant}: {verdict}"]
    lines += [f"  ✗ {failure}" for failure in result.failures]
    if answer.error:
        lines.append(f"  error: {answer.error}")
    lines += ["", "answer:", answer.text.strip() or "(empty)", "", "context sent:", answer.prompt]
    hits = enumerate(answer.hits, start=1)
    lines += [f"  [{n}] {short_path(h.source)} · chunk {h.chunk_index} · {h.distance:.3f}" for n, h in hits]
    return "\n".join(lines)


def matrix_summary(suite: Suite, results: list[CaseResult]) -> str:
    """E.g. "suite.yaml: 9 cases × 2 variants · 12 passed · 3 failed · 3 to go"."""
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    left = sum(len(suite.variants_of(case)) for case in suite.cases) - len(results)
    more = f" · {left} to go" if left else ""
    shape = f"{len(suite.cases)} cases × {len(suite.variants)} variants"
    return f"{suite.path.name}: {shape} · {passed} passed · {failed} failed{more}"


def case_cells(suite: Suite, case: Case) -> list[Text]:
    """A matrix row before any result: pending where the case runs, a dash where it does not."""
    names = {v.name for v in suite.variants_of(case)}
    return [PENDING if v.name in names else SKIPPED for v in suite.variants]


class SuitesPane(Pane):
    """The suite path and run button above, the matrix in the middle, the highlighted cell below."""

    BINDINGS: ClassVar[list[BindingType]] = bindings_for("SuitesPane")

    @dataclass
    class Loaded(Message):
        path: Path
        suite: Suite

    @dataclass
    class CaseDone(Message):
        result: CaseResult

    @dataclass
    class Finished(Message):
        run: EvalRun

    def __init__(self, session: PlaygroundSession, *, data_dir: Path, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.data_dir = data_dir
        self.suite: Suite | None = None
        self.results: dict[tuple[str, str], CaseResult] = {}
        self.cancel_token: CancelToken | None = None
        self.run: EvalRun | None = None
        """The last finished run."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="suite-bar"):
            yield Input(
                short_path(demo_suite(self.data_dir)), placeholder="suite file (YAML)", compact=True, id="suite-path"
            )
            yield Button("Run (ctrl+r)", compact=True, id="suite-run")
        yield Static("no suite run yet", id="suite-summary", markup=False)
        yield Table(id="suite-matrix", cursor_type="cell", zebra_stripes=True)
        with VerticalScroll(id="suite-scroll"):
            yield Static(NO_RESULT, id="suite-detail", markup=False)

    @property
    def matrix(self) -> DataTable[str | Text]:
        return self.query_one("#suite-matrix", DataTable)

    @property
    def running(self) -> bool:
        return self.cancel_token is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":
            return self.running
        if action == "run":
            return None if self.running else True
        return True

    @on(Button.Pressed, "#suite-run")
    @on(Input.Submitted, "#suite-path")
    def action_run(self) -> None:
        """Load the suite file and run every case against every variant."""
        if self.running:
            return
        path = Path(self.query_one("#suite-path", Input).value.strip()).expanduser()
        self.cancel_token = CancelToken()
        self.results.clear()
        self.query_one("#suite-summary", Static).update(f"loading {path}…")
        self.refresh_bindings()
        self.run_suite(self.session, path, self.cancel_token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="playground-suite", description="Run the suite")
    def run_suite(self, session: PlaygroundSession, path: Path, cancel: CancelToken) -> None:
        from services.evals.runs import save_run

        suite = load_suite(path)
        self.post_message(self.Loaded(path, suite))

        def done(result: CaseResult) -> None:
            self.post_message(self.CaseDone(result))

        with session.lock:
            run = run_suite(suite, engine=session.engine(), on_result=done, cancel=cancel)
        save_run(self.context.services.store(), run)
        self.post_message(self.Finished(run))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self.suite = suite = event.suite
        matrix = self.matrix
        matrix.clear(columns=True)
        matrix.add_column("Case", key="case")
        for variant in suite.variants:
            matrix.add_column(variant.name, key=variant.name)
        for case in suite.cases:
            matrix.add_row(case.name, *case_cells(suite, case), key=case.name)
        self._show_summary()

    @on(CaseDone)
    def _case_done(self, event: CaseDone) -> None:
        r = event.result
        self.results[(r.case, r.variant)] = r
        self.matrix.update_cell(r.case, r.variant, PASS if r.passed else FAIL, update_width=True)
        self._show_summary()
        if self.matrix.cursor_coordinate.column == 0 and len(self.results) == 1:
            self.matrix.move_cursor(row=self.matrix.get_row_index(r.case), column=1)
        self._show_cell(self.matrix.cursor_coordinate)

    @on(Finished)
    def _finished(self, event: Finished) -> None:
        self.run = event.run
        self._show_summary(f" · run {event.run.id} saved")

    def _show_summary(self, extra: str = "") -> None:
        if self.suite is None:
            return
        text = matrix_summary(self.suite, list(self.results.values()))
        self.query_one("#suite-summary", Static).update(text + extra)

    @on(Worker.StateChanged)
    def _run_finished(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "playground-suite" and event.worker.is_finished:
            self.cancel_token = None
            if event.worker.error is not None:
                self.query_one("#suite-summary", Static).update(f"suite not run: {event.worker.error}")
            self.refresh_bindings()

    def action_cancel_run(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()

    # ------------------------------------------------------------------ detail

    @on(DataTable.CellHighlighted, "#suite-matrix")
    def _cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        self._show_cell(event.coordinate)

    def _show_cell(self, coordinate: Coordinate) -> None:
        if self.suite is None or not self.matrix.row_count:
            return
        keys = self.matrix.coordinate_to_cell_key(coordinate)
        result = self.results.get((str(keys.row_key.value), str(keys.column_key.value)))
        detail = self.query_one("#suite-detail", Static)
        detail.update(result_detail(result) if result is not None else f"{keys.row_key.value}: no result yet")
