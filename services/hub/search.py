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
    """A search row from the hub's JSON for one model, every field type-checked (a wrong type is a
    malformed answer). Read directly: huggingface_hub's `ModelInfo` costs its ~100 ms import on every
    CLI search, and a search row needs nine fields."""
    card, safetensors = _object(raw.get("cardData")), _object(raw.get("safetensors"))
    modified = _text(raw.get("lastModified"))
    return ModelSummary(
        id=_text(raw.get("id") or raw.get("modelId")) or _missing("id"),
        task=_text(raw.get("pipeline_tag")),
        library=_text(raw.get("library_name")),
        downloads=_count(raw.get("downloads")) or 0,
        likes=_count(raw.get("likes")) or 0,
        params=_count(safetensors.get("total")),
        license=license_from(card, raw.get("tags")),
        gated=bool(raw.get("gated")),
        updated=datetime.fromisoformat(modified) if modified else None,
    )


def license_of(info: ModelInfo) -> str | None:
    """The licence of a model's full info: from its card, else from a `license:` tag."""
    return license_from(info.card_data.to_dict() if info.card_data else {}, info.tags)


def license_from(card: dict[str, Any], tags: object) -> str | None:
    """The licence from the model card's data, else from a `license:` tag."""
    if card.get("license"):
        return str(card["license"])
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise TypeError("tags is not a list of strings")
    return next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)


def _object(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _text(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _count(value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _missing(field: str) -> str:
    raise KeyError(field)
