"""Listings: filtering and sorting `/api/models`, cursor pages, and the tree of a repo's files."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from .repos import HubFile, Repo
from .wire import HubError, HubRequest

PAGE_SIZE = 1000
"""Default and largest page of `/api/models` and tree listings, as on the Hub."""


SORT_KEYS: dict[str, Callable[[Repo], Any]] = {
    "downloads": lambda repo: repo.downloads,
    "likes": lambda repo: repo.likes,
    "trendingScore": lambda repo: repo.trending_score,
    "lastModified": lambda repo: repo.last_modified,
    "createdAt": lambda repo: repo.created_at or repo.last_modified,
    "id": lambda repo: repo.repo_id.lower(),
}
SORT_ALIASES = {"trending_score": "trendingScore", "last_modified": "lastModified", "created_at": "createdAt"}


def matches(repo: Repo, request: HubRequest) -> bool:
    query = request.query
    tags = set(repo.all_tags)
    checks = (
        request.first("search", "").lower() in repo.repo_id.lower(),
        "author" not in query or (repo.author or "").lower() == request.first("author", "").lower(),
        all(tag in tags for tag in query.get("filter", [])),
        "pipeline_tag" not in query or repo.pipeline_tag == request.first("pipeline_tag", ""),
        "library" not in query or repo.library_name == request.first("library", ""),
        "gated" not in query or bool(repo.gated) == request.flag("gated"),
    )
    return all(checks)


def sort_repos(request: HubRequest, repos: list[Repo]) -> list[Repo]:
    name = request.first("sort", "")
    if not name:
        return repos
    key = SORT_KEYS.get(SORT_ALIASES.get(name, name))
    if key is None:
        raise HubError(400, f"Invalid sort: {name}")
    by_id = sorted(repos, key=lambda repo: repo.repo_id)
    return sorted(by_id, key=key, reverse=request.first("direction", "-1") != "1")


def page_size(request: HubRequest) -> int:
    try:
        limit = int(request.first("limit", str(PAGE_SIZE)))
    except ValueError:
        raise HubError(400, "Invalid limit") from None
    if limit < 1:
        raise HubError(400, "Invalid limit")
    return min(limit, PAGE_SIZE)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor))["offset"])
    except (ValueError, KeyError, TypeError):
        raise HubError(400, "Invalid cursor") from None


def tree_entries(files: Mapping[str, HubFile], path: str, *, recursive: bool) -> list[dict[str, object]]:
    """Tree listing of `path` (folders first), as `/api/models/{repo}/tree/{rev}/{path}` answers."""
    prefix = f"{path}/" if path else ""
    relative = sorted(name[len(prefix) :] for name in files if name.startswith(prefix))
    if path and not relative:
        raise HubError(404, f"{path} does not exist on this revision", "EntryNotFound")
    folders = {
        "/".join(parts[:depth])
        for parts in (rel.split("/")[:-1] for rel in relative)
        for depth in range(1, len(parts) + 1)
    }
    if not recursive:
        folders = {folder for folder in folders if "/" not in folder}
        relative = [rel for rel in relative if "/" not in rel]
    folder_entries = [_folder_entry(files, prefix + folder) for folder in sorted(folders)]
    return folder_entries + [_file_entry(files[prefix + rel]) for rel in relative]


def _folder_entry(files: Mapping[str, HubFile], folder: str) -> dict[str, object]:
    oids = "".join(files[name].git_oid for name in sorted(files) if name.startswith(f"{folder}/"))
    return {"type": "directory", "oid": hashlib.sha1(oids.encode()).hexdigest(), "size": 0, "path": folder}


def _file_entry(file: HubFile) -> dict[str, object]:
    entry: dict[str, object] = {"type": "file", "oid": file.git_oid, "size": file.size, "path": file.path}
    if file.is_lfs:
        entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
    return entry
