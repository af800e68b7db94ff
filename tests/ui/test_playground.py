"""The Playground with the real demo workspace: the tiny Llama answers, MiniLM embeds, Chroma stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.message import Message
from textual.widgets import Input, Select, Static, TabbedContent

from services.errors import UsageError
from services.evals.suite import load_suite
from services.finetune.adapters import list_adapters
from services.playground import chat_models
from services.rag.query import parse_where
from tests.ui import finetune_support
from tests.ui import playground_support as support
from tests.ui.conftest import SettingsFactory, make_app, wait_for
from workbench.tui.screens.playground.chat import ChatPane
from workbench.tui.screens.playground.modals import ContextScreen, SaveCaseScreen
from workbench.tui.widgets import ConfirmScreen
from workbench.tui.widgets.transcript import Transcript

SIZE = (140, 42)


@pytest.fixture
def workspace(tmp_path: Path, demo_cache: Path, demo_template: Path) -> Path:
    data_dir = tmp_path / "workspace"
    support.copy_demo(demo_template, data_dir)
    return data_dir


def texts(transcript: Transcript, selector: str) -> list[str]:
    return [str(w.render()) for w in transcript.query(selector).results(Static)]


async def ask(pilot: Any, question: str) -> None:
    chat_input = pilot.app.screen.query_one("#chat-input", Input)
    chat_input.focus()
    chat_input.value = question
    await pilot.press("enter")


async def test_a_question_streams_into_the_transcript(make_settings: SettingsFactory, workspace: Path) -> None:
    streamed: list[ChatPane.Streamed] = []

    def hook(message: Message) -> None:
        if isinstance(message, ChatPane.Streamed):
            streamed.append(message)

    app = make_app(make_settings())
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        screen = await support.playground(pilot)
        chat = screen.chat
        await pilot.press("i")
        assert app.focused is screen.query_one("#chat-input")
        await ask(pilot, "Which machine has the GPU?")
        await wait_for(pilot, lambda: "a" in chat.last, timeout=120)
        await wait_for(pilot, lambda: not chat.streaming)
        answer = chat.last["a"].answer
        transcript = chat.transcript("a")
        assert answer.error is None and answer.tokens > 0
        assert texts(transcript, ".transcript-question") == ["» Which machine has the GPU?"]
        assert streamed and streamed[-1].column == "a"
        assert answer.text.startswith(streamed[-1].text)
        [stats] = texts(transcript, ".transcript-stats")
        assert "first token" in stats and "tokens/s" in stats
        assert chat.history["a"] == [("Which machine has the GPU?", answer.text)]

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextScreen))
        assert app.screen.exchanges[0].answer.prompt == answer.prompt  # type: ignore[attr-defined]
        await pilot.press("escape")


async def test_compare_fills_both_columns(make_settings: SettingsFactory, workspace: Path) -> None:
    support.ingest_demo(workspace, workspace.parent / "hub")
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot)
        chat = screen.chat
        await pilot.press("ctrl+b")
        assert chat.comparing and chat.transcript("b").display
        form_b = chat.form("b")
        form_b.set_field("rag", True)
        form_b.set_field("collection", support.COLLECTION)
        await ask(pilot, "How do developers log in over SSH?")
        await wait_for(pilot, lambda: {"a", "b"} <= set(chat.last), timeout=180)
        a, b = chat.last["a"].answer, chat.last["b"].answer
        assert a.error is None and b.error is None
        # 4 retrieved; the demo model (512 positions) holds those that fit (`appkit.budget`)
        assert a.hits == [] and 1 <= len(b.hits) <= 4 and b.context_trimmed
        assert "02-access-policy" in " ".join(h.source for h in b.hits)
        assert chat.transcript("b").title_text.endswith(f"RAG {support.COLLECTION}")
        for column in ("a", "b"):
            assert len(texts(chat.transcript(column), ".transcript-stats")) == 1


async def test_ingest_then_query_shows_hits_from_the_expected_source(
    make_settings: SettingsFactory, workspace: Path
) -> None:
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot, "collections")
        pane = screen.collections
        await wait_for(pilot, lambda: pane.query_one("#ingest-status", Static).render() != "")
        await app.run_action("in_mode('playground', 'ingest')")  # what "playground: Ingest" runs
        await wait_for(pilot, lambda: support.COLLECTION in pane.collections, timeout=180)
        info = pane.collections[support.COLLECTION]
        assert info.count > 0 and not info.read_only
        status = str(pane.query_one("#ingest-status", Static).render())
        assert status.startswith(f"{support.COLLECTION}: 7 added")
        await wait_for(pilot, lambda: pane.selected == support.COLLECTION)

        await support.query_collection(pilot, pane)
        assert pane.hits_table.row_count == 4
        assert "02-access-policy" in pane.hits[0].source
        detail = str(pane.query_one("#hit-detail", Static).render())
        assert pane.hits[0].text.strip()[:40] in detail and '"chunk_index"' in detail

        where = pane.query_one("#query-where", Input)
        where.value = '{"chunk_index": 0}'
        where.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: all(h.chunk_index == 0 for h in pane.hits), timeout=60)

        where.value = "{not json"
        await pilot.press("enter")
        await pilot.pause()
        assert app.notices[-1].title == "Query" and "not valid JSON" in app.notices[-1].message  # type: ignore[attr-defined]


async def test_delete_collection_asks_first(make_settings: SettingsFactory, workspace: Path) -> None:
    support.ingest_demo(workspace, workspace.parent / "hub")
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot, "collections")
        pane = screen.collections
        await wait_for(pilot, lambda: pane.selected == support.COLLECTION)
        pane.table.focus()
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not pane.collections and pane.selected is None)


async def test_suite_run_fills_the_matrix(make_settings: SettingsFactory, workspace: Path) -> None:
    support.ingest_demo(workspace, workspace.parent / "hub")
    suite = load_suite(workspace / "demo" / "suite.yaml")
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot)
        pane = screen.suites
        await app.run_action("in_mode('playground', 'run_suite')")  # what "playground: Run suite" runs
        assert screen.query_one("#playground-tabs", TabbedContent).active == "suites"
        await wait_for(pilot, lambda: pane.run is not None, timeout=240)
        cells = sum(len(suite.variants_of(case)) for case in suite.cases)
        assert len(pane.results) == cells
        verdicts = {key: r.passed for key, r in pane.results.items()}
        assert verdicts[("gpu-question", "base")] is True
        assert verdicts[("fails-on-purpose", "base")] is False
        row = pane.matrix.get_row("fails-on-purpose")
        assert [str(cell) for cell in row] == ["fails-on-purpose", "✗ fail", "✗ fail", "-"]
        assert str(pane.matrix.get_row("retrieval-finds-the-policy")[1]) == "-"
        summary = str(pane.query_one("#suite-summary", Static).render())
        assert f"run {pane.run.id} saved" in summary

        pane.matrix.focus()
        pane.matrix.move_cursor(row=pane.matrix.get_row_index("fails-on-purpose"), column=1)
        await pilot.pause()
        detail = str(pane.query_one("#suite-detail", Static).render())
        assert detail.startswith("fails-on-purpose × base: FAIL")
        assert "✗ equals" in detail and "context sent:" in detail


async def test_save_as_case_appends_to_the_suite(make_settings: SettingsFactory, workspace: Path) -> None:
    suite_file = workspace / "demo" / "suite.yaml"
    before = load_suite(suite_file)
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot)
        chat = screen.chat
        await ask(pilot, "Who approves a release?")
        await wait_for(pilot, lambda: "a" in chat.last and not chat.streaming, timeout=120)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveCaseScreen))
        modal = app.screen
        assert modal.query_one("#save-name", Input).value == "who-approves-a-release"
        modal.query_one("#save-kind", Select).value = "icontains"
        modal.query_one("#save-value", Input).value = "release"
        await pilot.click("#save")
        await wait_for(pilot, lambda: any(n.title == "Playground" for n in app.notices))  # type: ignore[attr-defined]
    after = load_suite(suite_file)
    assert [c.name for c in after.cases] == [*(c.name for c in before.cases), "who-approves-a-release"]
    new = after.cases[-1]
    assert new.question == "Who approves a release?"
    assert [a.model_dump(exclude_none=True) for a in new.asserts] == [{"type": "icontains", "value": "release"}]
    assert suite_file.read_text().startswith("# Sample prompt suite")
    assert yaml.safe_load(suite_file.read_text())["cases"][-1]["name"] == "who-approves-a-release"


async def test_an_invalid_suite_says_where(make_settings: SettingsFactory, workspace: Path) -> None:
    bad = workspace / "bad.yaml"
    bad.write_text("variants:\n  - name: base\ncases: []\n")
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot, "suites")
        screen.suites.query_one("#suite-path", Input).value = str(bad)
        screen.suites.action_run()
        await wait_for(pilot, lambda: not screen.suites.running)
        await pilot.pause()
        summary = str(screen.suites.query_one("#suite-summary", Static).render())
        assert summary.startswith(f"suite not run: {bad}:3: cases:")
        assert app.notices[-1].severity == "error"  # type: ignore[attr-defined]


def test_form_choices_come_from_the_cache_and_the_jobs(demo_cache: Path, tmp_path: Path) -> None:
    assert chat_models(demo_cache) == ["workbench-demo/tiny-llama"]  # the MiniLM embedder is left out
    adapter = tmp_path / "data" / "jobs" / "demo-run-20240301-120000-000000" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "workbench-demo/tiny-llama"}')
    [choice] = list_adapters(tmp_path / "data")
    assert (choice.version, choice.path, choice.base_model) == (
        adapter.parent.name,
        adapter,
        "workbench-demo/tiny-llama",
    )
    assert list_adapters(tmp_path / "nothing") == []


def test_where_filter_parsing() -> None:
    assert parse_where("  ") is None
    assert parse_where('{"chunk_index": 0}') == {"chunk_index": 0}
    with pytest.raises(UsageError, match="JSON object"):
        parse_where("[1]")


async def test_compare_base_and_adapter(
    make_settings: SettingsFactory, workspace: Path, tmp_path_factory: pytest.TempPathFactory, demo_template: Path
) -> None:
    job = finetune_support.copy_job(finetune_support.finished_job(tmp_path_factory, demo_template), workspace)
    app = make_app(make_settings())
    async with app.run_test(size=SIZE) as pilot:
        screen = await support.playground(pilot)
        chat = screen.chat
        await app.run_action("in_mode('playground', 'compare')")  # what "playground: Compare" runs
        adapter = chat.form("b").query_one("#b-adapter", Select)
        await wait_for(pilot, lambda: adapter.value == str(job / "adapter"))
        await ask(pilot, "Convert the words to upper case. gpu token")
        await wait_for(pilot, lambda: {"a", "b"} <= set(chat.last), timeout=180)
        a, b = chat.last["a"].answer, chat.last["b"].answer
        assert a.error is None and b.error is None
        assert chat.transcript("a").title_text == "A: tiny-llama"
        assert chat.transcript("b").title_text == f"B: tiny-llama + {job.name}"
