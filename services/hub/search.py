"""Searching the hub: filters and sort order, results a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

from services.hub.connection import HubConnection, hub_errors, malformed_answers, offline_error, offline_mode, pages

if TYPE_CHECKING:
    from huggingface_hub.hf_api import ModelInfo


SortKey = Literal["downloads", "likes", "trending", "modified"]

SORT_PARAMS: dict[str, str] = {  # the hub's own names, as huggingface_hub's list_models sends them
    "downloads": "downloads",
    "likes": "likes",
    "trending": "trendingScore",
    "modified": "lastModified",
}

SEARCH_FIELDS = [
    "pipeline_tag",
    "library_name",
    "downloads",
    "likes",
    "trendingScore",
    "lastModified",
    "gated",
    "safetensors",
    "cardData",
    "tags",
]


@dataclass(frozen=True)
class ModelSummary:
    """One row of search results."""

    id: str
    task: str | None
    library: str | None
    downloads: int
    likes: int
    params: int | None
    license: str | None
    gated: bool
    updated: datetime | None


class ModelPager:
    """Lazy search results: each `next_page()` fetches at most one more page over HTTP."""

    def __init__(self, conn: HubConnection, items: Iterator[dict[str, Any]], page_size: int) -> None:
        self._conn = conn
        self._items = items
        self.page_size = page_size
        self.exhausted = False

    def next_page(self) -> list[ModelSummary]:
        with hub_errors(self._conn, "search"), malformed_answers("search"):
            page = [summarise(raw) for raw in islice(self._items, self.page_size)]
        self.exhausted = len(page) < self.page_size
        return page


def search_models(
    conn: HubConnection,
    query: str = "",
    *,
    task: str | None = None,
    library: str | None = None,
    license: str | None = None,
    gated: bool | None = None,
    sort: SortKey = "downloads",
    page_size: int = 50,
) -> ModelPager:
    """Search the hub; results arrive a page at a time, never as one unbounded listing."""
    if offline_mode():
        raise offline_error(conn)
    params = _search_params(query, task, library, license, gated, sort, page_size)
    items = (item for page in pages(conn, f"{conn.url}/api/models", params) for item in page)
    return ModelPager(conn, items, page_size)


def _search_params(
    query: str,
    task: str | None,
    library: str | None,
    license: str | None,
    gated: bool | None,
    sort: SortKey,
    page_size: int,
) -> dict[str, Any]:
    filters = [f for f in (library, f"license:{license}" if license else None) if f]
    params: dict[str, Any] = {
        "sort": SORT_PARAMS[sort],
        "limit": page_size,
        "expand": SEARCH_FIELDS,
    }
    optional = {"search": query or None, "pipeline_tag": task, "filter": filters or None}
    if gated is not None:
        optional["gated"] = str(gated).lower()
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


def summarise(raw: dict[str, Any]) -> ModelSummary:
    """A search row from the hub's JSON for one model."""
    from huggingface_hub.hf_api import ModelInfo

    info = ModelInfo(**raw)
    return ModelSummary(
        id=info.id,
        task=info.pipeline_tag,
        library=info.library_name,
        downloads=info.downloads or 0,
        likes=info.likes or 0,
        params=info.safetensors.total if info.safetensors else None,
        license=license_of(info),
        gated=bool(info.gated),
        updated=info.last_modified,
    )


def license_of(info: ModelInfo) -> str | None:
    """The licence from the model card, else from a `license:` tag."""
    card = info.card_data.to_dict() if info.card_data else {}
    if card.get("license"):
        return str(card["license"])
    tags = info.tags or []
    return next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
