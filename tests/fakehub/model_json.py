"""The Hub's JSON for a model: which fields each endpoint sends, `expand`, and each field's value."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from .repos import HubFile, Repo
from .wire import HubError, HubRequest

LIST_FIELDS = (
    "_id",
    "id",
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
"""Fields of a `/api/models` entry without `full`, `cardData` or `expand`."""

FULL_FIELDS = (*LIST_FIELDS, "author", "sha", "lastModified", "gated", "disabled", "siblings")
"""Fields of a `/api/models` entry with `full=true`."""

INFO_FIELDS = (*FULL_FIELDS, "cardData", "safetensors", "usedStorage", "spaces")
"""Fields of `/api/models/{repo}` without `expand`."""

EXPANDABLE = frozenset(
    {
        "author",
        "baseModels",
        "cardData",
        "childrenModelCount",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "lastModified",
        "library_name",
        "likes",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "private",
        "resourceGroup",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "usedStorage",
        "widgetData",
    }
)
"""The `expand` values the Hub accepts for models; any other answers 400."""


def expand_keys(request: HubRequest) -> tuple[str, ...]:
    expand = request.query.get("expand", [])
    unknown = sorted(set(expand) - EXPANDABLE)
    if unknown:
        raise HubError(400, f"Invalid expand property: {', '.join(unknown)}")
    return ("_id", "id", *expand) if expand else ()


def list_keys(request: HubRequest) -> tuple[str, ...]:
    expanded = expand_keys(request)
    if expanded:
        return expanded
    keys = FULL_FIELDS if request.flag("full") else LIST_FIELDS
    return (*keys, "cardData") if request.flag("cardData") else keys


def model_json(repo: Repo, keys: Iterable[str], *, blobs: bool) -> dict[str, object]:
    """The Hub's JSON for `repo`, limited to `keys`; fields without a value are left out."""
    fields = _model_fields(repo, blobs=blobs)
    values = {key: fields[key]() for key in keys if key in fields}
    return {key: value for key, value in values.items() if value is not None}


def _model_fields(repo: Repo, *, blobs: bool) -> dict[str, Callable[[], object]]:
    return {
        "_id": lambda: repo.sha[:24],
        "id": lambda: repo.repo_id,
        "modelId": lambda: repo.repo_id,
        "author": lambda: repo.author,
        "sha": lambda: repo.sha,
        "lastModified": lambda: _iso(repo.last_modified),
        "createdAt": lambda: _iso(repo.created_at or repo.last_modified),
        "private": lambda: False,
        "disabled": lambda: False,
        "gated": lambda: repo.gated,
        "downloads": lambda: repo.downloads,
        "likes": lambda: repo.likes,
        "trendingScore": lambda: repo.trending_score,
        "library_name": lambda: repo.library_name,
        "pipeline_tag": lambda: repo.pipeline_tag,
        "tags": lambda: repo.all_tags,
        "cardData": lambda: repo.card_data,
        "siblings": lambda: [_sibling(file, blobs=blobs) for file in repo.files.values()],
        "safetensors": lambda: _safetensors(repo.safetensors_params),
        "usedStorage": lambda: sum(file.size for file in repo.files.values()),
        "spaces": list,
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _safetensors(params: dict[str, int] | None) -> dict[str, object] | None:
    return {"parameters": params, "total": sum(params.values())} if params else None


def _sibling(file: HubFile, *, blobs: bool) -> dict[str, object]:
    if not blobs:
        return {"rfilename": file.path}
    sibling: dict[str, object] = {"rfilename": file.path, "blobId": file.git_oid, "size": file.size}
    if file.is_lfs:
        sibling["lfs"] = {"sha256": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
    return sibling
