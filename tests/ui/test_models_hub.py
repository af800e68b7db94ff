"""The Hub tab against the fake hub: search, paging, filters, details with fit, download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from services.units import human_bytes
from tests.fakehub import FakeHub, big_file_repo
from tests.ui.conftest import FIXED_GPU, TINY, SettingsFactory, make_app, settle, wait_for
from workbench.tui.screens.models.detail import ModelDetail
from workbench.tui.screens.models.hub import HubPane
from workbench.tui.widgets import ConfirmScreen, TransferBar
from workbench.wiring import Services


def hub_pane(app: Any) -> HubPane:
    return app.screen.query_one(HubPane)


def row_ids(pane: HubPane) -> list[str]:
    table = pane.table
    return [str(key.value) for key in table.rows]


def search_requests(hub: FakeHub) -> int:
    """Searches the app made (the status check asks for one model, without `expand`)."""
    return sum(1 for r in hub.requests_to("/api/models") if "expand" in r.query)


def searched_for(hub: FakeHub, skip: int) -> list[str]:
    """The search texts of the app's searches after the first `skip`."""
    found = [r for r in hub.requests_to("/api/models") if "expand" in r.query][skip:]
    return [r.query.get("search", [""])[-1] for r in found]


def weights_fetched(hub: FakeHub) -> bool:
    return any(r.method == "GET" and r.path.endswith("/model.safetensors") for r in hub.requests)


async def results(pilot: Pilot[Any], pane: HubPane, count: int | None = None) -> None:
    """Wait until the current search has shown its results (and `count` rows, if given)."""
    await wait_for(pilot, lambda: pane.pager is not None and (count is None or pane.table.row_count == count))
    await settle(pilot)


async def type_query(pilot: Pilot[Any], text: str) -> None:
    await pilot.press("slash", *text)


async def test_search_fills_the_table_with_the_first_page(
    make_settings: SettingsFactory, synthetic_hub: FakeHub
) -> None:
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await results(pilot, pane, 20)
        by_downloads = sorted(synthetic_hub._repos.values(), key=lambda r: (-r.downloads, r.repo_id))
        assert row_ids(pane) == [r.repo_id for r in by_downloads[:20]]
        assert pane.table.get_row_at(0)[1] == by_downloads[0].pipeline_tag
        assert search_requests(synthetic_hub) == 1
        assert "20 models" in str(pane.query_one("#hub-info", Static).render())


async def test_typing_searches_once_after_a_pause(make_settings: SettingsFactory, synthetic_hub: FakeHub) -> None:
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await results(pilot, pane)
        before = search_requests(synthetic_hub)
        await type_query(pilot, "llama")
        assert pane.query_one("#hub-query", Input).value == "llama"
        await wait_for(pilot, lambda: searched_for(synthetic_hub, before)[-1:] == ["llama"])
        await results(pilot, pane)
        assert pane._search_timer is None  # nothing left to search for
        typed = searched_for(synthetic_hub, before)
        # One search per pause in the typing: once when the keys come quickly, never one per key
        # (a slow machine may pause mid-word, so the count is not fixed), and never the same twice.
        assert typed[-1] == "llama" and len(typed) < len("llama") and len(set(typed)) == len(typed)
        assert all("llama".startswith(text) for text in typed)
        assert row_ids(pane) and all("llama" in repo_id for repo_id in row_ids(pane))


async def test_a_new_search_sizes_the_columns_to_its_own_rows(
    make_settings: SettingsFactory, fake_hub: FakeHub
) -> None:
    wide, narrow = "an-author-with-a-long-name/and-a-model-with-a-longer-one", "org/short"
    fake_hub.add_repo(wide, downloads=2, pipeline_tag="text-generation")
    fake_hub.add_repo(narrow, downloads=1, pipeline_tag="text-generation")
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await results(pilot, pane, 2)
        await wait_for(pilot, lambda: pane.table.ordered_columns[0].content_width == len(wide))
        await type_query(pilot, "short")
        await pilot.press("enter")
        await wait_for(pilot, lambda: row_ids(pane) == [narrow])
        await settle(pilot)
        # A column as wide as the rows of an earlier search would make the layout depend on the searches before.
        assert pane.table.ordered_columns[0].content_width == len(narrow)


async def test_filters_narrow_the_results(make_settings: SettingsFactory, synthetic_hub: FakeHub) -> None:
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await results(pilot, pane)
        pane.query_one("#hub-task", Select).value = "text-generation"
        pane.query_one("#hub-license", Select).value = "mit"
        pane.query_one("#hub-gated", Select).value = False
        await wait_for(pilot, lambda: pane.last_query is not None and pane.last_query.gated is False)
        await results(pilot, pane)
        expected = {
            r.repo_id
            for r in synthetic_hub._repos.values()
            if r.pipeline_tag == "text-generation" and r.license == "mit" and not r.gated
        }
        assert expected and set(row_ids(pane)) == expected
        assert {pane.table.get_row_at(i)[6] for i in range(pane.table.row_count)} == {"no"}


async def test_sort_by_likes(make_settings: SettingsFactory, synthetic_hub: FakeHub) -> None:
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await results(pilot, pane)
        pane.query_one("#hub-sort", Select).value = "likes"
        await wait_for(pilot, lambda: pane.last_query is not None and pane.last_query.sort == "likes")
        await results(pilot, pane)
        by_likes = sorted(synthetic_hub._repos.values(), key=lambda r: (-r.likes, r.repo_id))
        assert row_ids(pane) == [r.repo_id for r in by_likes[:20]]


async def test_cursor_at_the_end_loads_the_next_page(make_settings: SettingsFactory, synthetic_hub: FakeHub) -> None:
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await results(pilot, pane, 20)
        pane.table.focus()
        await pilot.press("ctrl+end")
        await results(pilot, pane, 40)
        assert search_requests(synthetic_hub) == 2
        assert len(set(row_ids(pane))) == 40
        await pilot.press("ctrl+end")
        await results(pilot, pane, 60)


async def test_detail_pane_shows_the_fit_badge(make_settings: SettingsFactory, tiny_llama_hub: FakeHub) -> None:
    app = make_app(make_settings(tiny_llama_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        detail = pane.query_one(ModelDetail)
        await wait_for(pilot, lambda: pane.details is not None and pane.details.id == TINY)
        assert detail.verdict == "fits"
        assert detail.query_one("#fit-badge").has_class("-fits")
        head = str(detail.query_one("#detail-head", Static).render())
        assert TINY in head and "licence apache-2.0" in head and "open" in head
        table = str(detail.query_one("#fit-table", Static).render())
        for scenario in ("inference bf16", "inference 8-bit", "inference 4-bit", "LoRA bf16", "QLoRA 4-bit"):
            assert scenario in table
        assert "NVIDIA L4" in table and "seq 2048" in table

        seq = detail.query_one("#fit-seq", Input)
        seq.value = "512"
        await wait_for(pilot, lambda: "seq 512" in str(detail.query_one("#fit-table", Static).render()))


async def test_download_through_the_confirm_modal(
    make_settings: SettingsFactory, tiny_llama_hub: FakeHub, tmp_path: Path
) -> None:
    app = make_app(make_settings(tiny_llama_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.details is not None)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        body = app.screen.body
        assert TINY in body and "download" in body and "free disk" in body and "~/hub" in body
        await pilot.press("y")
        await wait_for(pilot, lambda: any(n.title == "Download complete" for n in app.notices))
        app.screen.action_show_tab("local")  # the Local tab, built now, lists the new model
        local = app.screen.local
        await wait_for(pilot, lambda: local.listing is not None and local.listing.models)
        assert [m.repo_id for m in local.listing.models] == [TINY]
        assert (tmp_path / "hub" / "models--workbench-demo--tiny-llama" / "refs" / "main").is_file()
        assert not pane.query_one("#hub-transfer").display


async def test_download_can_be_declined(make_settings: SettingsFactory, tiny_llama_hub: FakeHub) -> None:
    app = make_app(make_settings(tiny_llama_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.details is not None)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen) and not pane.downloading
        assert not weights_fetched(tiny_llama_hub)


async def test_download_refused_when_the_disk_is_short(
    make_settings: SettingsFactory, tiny_llama_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tiny_llama_hub.endpoint)
    app = make_app(settings, services=Services(settings, gpus=[FIXED_GPU], free_disk=lambda path: 1000))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.details is not None)
        await pilot.press("d")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "error")
        assert pane.details is not None
        assert f"needs {human_bytes(pane.details.download_bytes)} but only 1.0 KB is free" in notice.message
        assert not isinstance(app.screen, ConfirmScreen)
        assert not weights_fetched(tiny_llama_hub)


async def test_gated_model_without_access(make_settings: SettingsFactory, fake_hub: FakeHub) -> None:
    fake_hub.add_repo("acme/locked-7b", {"config.json": b'{"model_type": "llama"}'}, gated="manual", license="other")
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.details is not None)
        head = str(pane.query_one("#detail-head", Static).render())
        assert "NO ACCESS" in head and f"{fake_hub.endpoint}/acme/locked-7b" in head
        await pilot.press("d")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "error")
        assert "acme/locked-7b is gated" in notice.message
        assert "accept the licence" in notice.message
        assert not isinstance(app.screen, ConfirmScreen)


async def test_cancel_then_resume_a_download(make_settings: SettingsFactory, fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_repo("acme/big", big_file_repo(tmp_path / "big", 8 * 1024 * 1024), license="mit")
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.details is not None)
        fake_hub.delay = 0.5
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: pane.downloading)
        assert pane.query_one(TransferBar).display
        await pilot.press("c")
        await wait_for(pilot, lambda: any(n.severity == "warning" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "warning")
        assert "stopped" in notice.message and "resume" in notice.message
        await wait_for(pilot, lambda: not pane.downloading)

        fake_hub.delay = 0
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: any(n.title == "Download complete" for n in app.notices))


async def test_detail_pane_built_with_the_first_model(make_settings: SettingsFactory, tiny_llama_hub: FakeHub) -> None:
    app = make_app(make_settings(tiny_llama_hub.endpoint))
    tiny_llama_hub.answering.clear()  # no model to show yet, however long the start takes on a busy machine
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        detail = pane.query_one(ModelDetail)
        assert not detail.query("#fit-bar") and not detail.query("#detail-more")  # not in the first frame
        tiny_llama_hub.answering.set()
        await wait_for(pilot, lambda: pane.details is not None)
        assert [w.id for w in detail.query_one("#detail-facts").children] == ["detail-head", "fit-bar", "fit-table"]
        assert [w.id for w in detail.children] == ["detail-facts", "detail-more"]


async def test_offline_hub_shows_one_line_and_local_still_works(
    make_settings: SettingsFactory, fake_hub: FakeHub, demo_cache: Path
) -> None:
    fake_hub.stop()
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.offline_message is not None)
        line = str(pane.query_one("#hub-offline", Static).render())
        assert line == pane.offline_message and "\n" not in line
        assert "unreachable" in line and fake_hub.endpoint in line
        assert pane.query_one("#hub-offline").display and not pane.query_one("#hub-main").display
        assert not pane.query_one("#hub-info").display
        assert not pane.query_one(ModelDetail).query("#fit-bar")  # never built while offline
        await wait_for(pilot, lambda: app.status.hub_state == "offline")
        assert not [n for n in app.notices if n.severity == "error"]

        await pilot.press("l")
        local = app.screen.local
        await wait_for(pilot, lambda: local.listing is not None)
        assert TINY in {m.repo_id for m in local.listing.models}


async def test_hf_hub_offline_shows_one_line(
    make_settings: SettingsFactory, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.offline_message is not None)
        assert "HF_HUB_OFFLINE" in pane.offline_message
        await wait_for(pilot, lambda: app.status.hub_state == "offline")
        assert fake_hub.requests_to("/api/models") == []


async def test_token_never_shown(make_settings: SettingsFactory, fake_hub: FakeHub) -> None:
    secret = "hf_secretSECRETsecret123"
    fake_hub.add_repo("acme/locked-7b", {"config.json": b"{}"}, gated="manual")
    app = make_app(make_settings(fake_hub.endpoint, hub__token=secret))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.details is not None)
        await pilot.press("d")
        await wait_for(pilot, lambda: app.notices)
        await settle(pilot)
        texts = [str(w.render()) for w in app.screen.query(Static)]
        texts += [n.message for n in app.notices]
        texts += [str(cell) for row in pane.query_one(DataTable).rows for cell in pane.table.get_row(row)]
        assert not [t for t in texts if secret in t]


async def test_slash_searches_from_anywhere_and_escape_returns_to_the_list(
    make_settings: SettingsFactory, synthetic_hub: FakeHub
) -> None:
    app = make_app(make_settings(synthetic_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await results(pilot, pane)
        await pilot.press("l", "slash")
        assert app.focused is pane.query_one("#hub-query", Input)
        await pilot.press(*"phi", "escape")
        assert app.focused is pane.table
        await pilot.press("2")
        assert app.current_mode == "finetune"


async def test_malformed_config_is_a_one_line_error(make_settings: SettingsFactory, fake_hub: FakeHub) -> None:
    fake_hub.add_repo("acme/bad-config", {"config.json": b"{not json"})
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "error")
        assert "config.json" in notice.message and "acme/bad-config" in notice.message
        assert not notice.message.startswith("unexpected")


async def test_malformed_file_headers_refuse_the_download(make_settings: SettingsFactory, fake_hub: FakeHub) -> None:
    fake_hub.add_repo("acme/bad-etag", {"config.json": b"{}", "model.safetensors": b"\0" * 64})
    fake_hub.tamper.etag = "../../../pwned"
    app = make_app(make_settings(fake_hub.endpoint))
    async with app.run_test(size=(140, 42)) as pilot:
        pane = hub_pane(app)
        await wait_for(pilot, lambda: pane.details is not None)
        await pilot.press("d")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app.notices))
        notice = next(n for n in app.notices if n.severity == "error")
        assert "ETag" in notice.message and not notice.message.startswith("unexpected")
        assert not isinstance(app.screen, ConfirmScreen)
        assert not [
            r for r in fake_hub.requests if r.method == "GET" and r.path.endswith("/model.safetensors") and not r.range
        ]
