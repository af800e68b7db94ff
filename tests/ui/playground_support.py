"""The demo workspace for the Playground's tests: demo documents and suite, and the documents ingested."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Select

from services.demo import EMBEDDING_MODEL
from services.rag.chroma import persistent_client
from services.rag.ingest import ingest
from services.rag.types import IngestReport
from tests.ui.conftest import wait_for
from workbench.tui.screens.playground.screen import PlaygroundScreen

COLLECTION = "demo-docs"


def copy_demo(demo_hub: Path, data_dir: Path) -> Path:
    """The demo folder (documents, suite, dataset) that `init_demo` wrote next to the session's cache."""
    target = data_dir / "demo"
    shutil.copytree(demo_hub.parent / "workspace" / "demo", target)
    return target


def ingest_demo(data_dir: Path, cache_dir: Path) -> IngestReport:
    """The demo documents in collection demo-docs of the workspace's embedded Chroma."""
    client = persistent_client(data_dir / "chroma")
    documents = [data_dir / "demo" / "documents"]
    return ingest(
        client,
        documents,
        collection=COLLECTION,
        model_id=EMBEDDING_MODEL,
        cache_dir=cache_dir,
        chunk_size=256,
        overlap=32,
    )


async def playground(pilot: Pilot[Any], tab: str = "chat") -> PlaygroundScreen:
    """Switch to the Playground, show `tab`, and wait until its lists are filled."""
    await wait_for(pilot, lambda: pilot.app.status.hub_state != "checking")
    await pilot.press("3")
    screen = pilot.app.screen
    assert isinstance(screen, PlaygroundScreen)
    model = screen.chat.form("a").query_one("#a-model", Select)
    await wait_for(pilot, lambda: model.value is not Select.NULL)
    if tab != "chat":
        screen.action_show_tab(tab)
    await pilot.pause()
    return screen


SSH_QUESTION = "How do developers log in to the servers over SSH?"


async def query_collection(pilot: Pilot[Any], pane: Any, text: str = SSH_QUESTION) -> None:
    """Type `text` into the retrieval inspector and wait for its hits."""
    query = pane.query_one("#query-text", Input)
    query.focus()
    query.value = text
    await pilot.press("enter")
    await wait_for(pilot, lambda: pane.hits_table.row_count > 0, timeout=60)
