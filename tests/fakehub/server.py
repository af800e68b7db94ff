"""A local HTTP server speaking the part of the Hugging Face Hub API that `huggingface_hub` uses.

Point the real client at it with `HfApi(endpoint=hub.endpoint)` or the `endpoint=` argument of
`hf_hub_download`/`snapshot_download`. Routes: `GET /api/models`, `GET /api/models/{repo}`,
`GET /api/models/{repo}/revision/{rev}`, `GET /api/models/{repo}/tree/{rev}[/{path}]` and
`HEAD`/`GET /{repo}/resolve/{rev}/{path}`; anything else answers 404.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import posixpath
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

from .repos import (
    EPOCH,
    FileSource,
    Gated,
    HubFile,
    Repo,
    commit_sha,
    folder_files,
    hub_file,
    safetensors_parameters,
    synthetic_repos,
)

PAGE_SIZE = 1000
"""Default and largest page of `/api/models` and tree listings, as on the Hub."""

STREAM_CHUNK = 1024 * 1024

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

SORT_KEYS: dict[str, Callable[[Repo], Any]] = {
    "downloads": lambda repo: repo.downloads,
    "likes": lambda repo: repo.likes,
    "trendingScore": lambda repo: repo.trending_score,
    "lastModified": lambda repo: repo.last_modified,
    "createdAt": lambda repo: repo.created_at or repo.last_modified,
    "id": lambda repo: repo.repo_id.lower(),
}
SORT_ALIASES = {"trending_score": "trendingScore", "last_modified": "lastModified", "created_at": "createdAt"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the hub received. The Authorization header's value is never kept."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorized: bool
    """Whether an Authorization header was present."""
    range: str | None


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    pairs: list[tuple[str, str]]
    token: str | None = field(repr=False)
    range: str | None

    def flag(self, name: str) -> bool:
        return self.first(name, "").lower() in {"1", "true"}

    def first(self, name: str, default: str) -> str:
        return self.query.get(name, [default])[0]


@dataclass
class _Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: HubFile | None = None
    start: int = 0
    length: int = 0
    cut_after: int | None = None


@dataclass
class Tampering:
    """Hostile answers for attack tests: what a malicious or broken hub or mirror could send.

    A listing may also name files with `..` segments; the normalised URLs such names produce are
    answered too, as a hostile hub would answer them.
    """

    sha: str | None = None
    """Commit id reported by model info and `X-Repo-Commit` (and accepted as a revision)."""
    etag: str | None = None
    """ETag (and linked ETag) sent on every resolve answer."""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers replaced on every resolve answer; an empty value removes the header."""
    info_body: bytes | None = None
    """Raw body of `/api/models` and `/api/models/{repo}` answers instead of the JSON listing or model."""
    swapped: dict[str, bytes] = field(default_factory=dict)
    """File path -> bytes sent by GET instead of the published content (listings keep the real hashes)."""
    padding: dict[str, int] = field(default_factory=dict)
    """File path -> number of bytes appended to its GET bodies (HEAD answers keep the real size)."""
    redirect_to: str | None = None
    """Base URL of another origin: resolves of LFS files answer 302 to `{redirect_to}/{sha256}`, like the Hub's CDN."""
    next_page: str | None = None
    """URL sent as the `Link: rel="next"` of every `/api/models` page."""


class HubError(Exception):
    """An error answer, with the `X-Error-Code` that `huggingface_hub` maps to its exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers

    def response(self) -> _Response:
        headers = {"Content-Type": "application/json", "X-Error-Message": self.message, **self.headers}
        if self.code:
            headers["X-Error-Code"] = self.code
        return _Response(self.status, headers, json.dumps({"error": self.message}).encode())


class FakeHub:
    """An in-process Hugging Face Hub for tests and benchmarks.

    `tokens` is the set of valid access tokens; None accepts any token. A request with a token
    outside the set answers 401, as the Hub does for invalid credentials.
    """

    def __init__(self, *, tokens: Iterable[str] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.tokens: frozenset[str] | None = None if tokens is None else frozenset(tokens)
        self.requests: list[RecordedRequest] = []
        self.delay: float = 0.0
        """Seconds slept before answering each request."""
        self._repos: dict[str, Repo] = {}
        self._grants: dict[str, set[str]] = {}
        self._faults: dict[tuple[str | None, str], int] = {}
        self.tamper = Tampering()
        """Hostile answers; the default sends none."""
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """Base URL to give `huggingface_hub` (`HF_ENDPOINT` / `HfApi(endpoint=...)`)."""
        if self._port == 0:
            raise RuntimeError("FakeHub has no port yet: call start() first")
        return f"http://{self._host}:{self._port}"

    def start(self) -> Self:
        """Listen and serve in a daemon thread; restarts on the same port after `stop()`."""
        if self._server is None:
            self._server = _Server((self._host, self._port), self)
            self._port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections, so clients get connection errors."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def offline(self) -> bool:
        """True while the hub refuses connections, as an unreachable Hub does."""
        return self._server is None

    @offline.setter
    def offline(self, value: bool) -> None:
        if value:
            self.stop()
        else:
            self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- contents ------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, FileSource] | None = None,
        *,
        pipeline_tag: str | None = None,
        library_name: str | None = None,
        license: str | None = None,
        gated: bool | str = False,
        downloads: int = 0,
        likes: int = 0,
        trending_score: int = 0,
        last_modified: datetime = EPOCH,
        created_at: datetime | None = None,
        tags: Iterable[str] = (),
        card: str | None = None,
        safetensors_params: dict[str, int] | None = None,
    ) -> Repo:
        """Add (or replace) a model repo; `card` becomes its README.md.

        Files are hashed now, so the commit sha follows the content. `safetensors_params`
        defaults to the parameter counts read from the repo's `.safetensors` headers.
        """
        sources = dict(files or {})
        if card is not None:
            sources["README.md"] = card.encode()
        hashed = {path: hub_file(path, source) for path, source in sorted(sources.items())}
        repo = Repo(
            repo_id=repo_id,
            sha=commit_sha(repo_id, hashed),
            sources=lambda: sources,
            pipeline_tag=pipeline_tag,
            library_name=library_name,
            license=license,
            gated=_gated(gated),
            downloads=downloads,
            likes=likes,
            trending_score=trending_score,
            last_modified=last_modified,
            created_at=created_at,
            tags=tuple(tags),
            safetensors_params=safetensors_params or safetensors_parameters(hashed.values()),
        )
        repo.files = hashed  # already hashed for the sha: skip hashing again on first use
        self._repos[repo_id] = repo
        return repo

    def add_folder_repo(self, repo_id: str, folder: Path, **meta: Any) -> Repo:
        """Add a repo holding every file under `folder` (streamed from disk)."""
        return self.add_repo(repo_id, folder_files(folder), **meta)

    def add_synthetic_models(self, n: int, seed: int = 0) -> list[Repo]:
        """Add `n` varied metadata-only repos; their small files are generated on first request."""
        repos = synthetic_repos(n, seed)
        self._repos.update((repo.repo_id, repo) for repo in repos)
        return repos

    def repo(self, repo_id: str) -> Repo:
        """The repo `repo_id`; KeyError if unknown."""
        return self._repos[repo_id]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose URL path is exactly `path`."""
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def grant(self, repo_id: str, token: str) -> None:
        """Give `token` access to the gated repo `repo_id`."""
        self._grants.setdefault(repo_id, set()).add(token)

    def fail_next_download(self, filename: str, *, after_bytes: int = 0, repo_id: str | None = None) -> None:
        """Make the next GET of `filename` send `after_bytes` bytes of its body, then drop the connection."""
        with self._lock:
            self._faults[(repo_id, filename)] = after_bytes

    # --- request handling (called from server threads) -----------------------------------------

    def _record(self, request: _Request) -> None:
        recorded = RecordedRequest(
            request.method, request.path, request.query, request.token is not None, request.range
        )
        with self._lock:
            self.requests.append(recorded)

    def _take_fault(self, repo_id: str, filename: str) -> int | None:
        with self._lock:
            for key in ((repo_id, filename), (None, filename)):
                if key in self._faults:
                    return self._faults.pop(key)
        return None

    def _handle(self, request: _Request) -> _Response:
        try:
            self._check_token(request.token)
            return self._route(request)
        except HubError as error:
            return error.response()
        except Exception as error:  # a bug in the fake: answer 500 and show it in the test output
            traceback.print_exc()
            return HubError(500, f"FakeHub error: {error!r}").response()

    def _check_token(self, token: str | None) -> None:
        if token is not None and self.tokens is not None and token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _route(self, request: _Request) -> _Response:
        parts = [unquote(part) for part in request.path.strip("/").split("/")]
        if parts[:2] == ["api", "models"]:
            return self._api_models(request, parts[2:])
        if "resolve" in parts[1:3]:
            repo, rest = self._split_repo(parts)
            if len(rest) >= 3 and rest[0] == "resolve":
                return self._resolve(request, repo, rest[1], "/".join(rest[2:]))
        traversal = self._traversal_target(request.path)
        if traversal is not None:
            return self._resolve(request, traversal[0], traversal[0].sha, traversal[1])
        raise HubError(404, "Not Found")

    def _traversal_target(self, path: str) -> tuple[Repo, str] | None:
        """The repo file whose `..`-laden name, joined into a resolve URL and normalised, is `path`."""
        for repo in list(self._repos.values()):
            for name in (n for n in repo.files if ".." in n.split("/")):
                for sha in {repo.sha, self.tamper.sha or repo.sha}:
                    if posixpath.normpath(f"/{repo.repo_id}/resolve/{sha}/{name}") == path:
                        return repo, name
        return None

    def _api_models(self, request: _Request, parts: list[str]) -> _Response:
        if not parts:
            return self._list_models(request)
        repo, rest = self._split_repo(parts)
        if not rest:
            return self._model_info(request, repo, "main")
        if rest[0] == "revision" and len(rest) == 2:
            return self._model_info(request, repo, rest[1])
        if rest[0] == "tree" and len(rest) >= 2:
            return self._tree(request, repo, rest[1], "/".join(rest[2:]))
        raise HubError(404, "Not Found")

    def _split_repo(self, parts: list[str]) -> tuple[Repo, list[str]]:
        for width in (2, 1):
            repo = self._repos.get("/".join(parts[:width]))
            if repo is not None:
                return repo, parts[width:]
        raise HubError(404, "Repository not found", "RepoNotFound")

    def _list_models(self, request: _Request) -> _Response:
        if self.tamper.info_body is not None:
            return _Response(200, {"Content-Type": "application/json"}, self.tamper.info_body)
        repos = _sort(request, [repo for repo in list(self._repos.values()) if _matches(repo, request)])
        keys = _list_keys(request)
        return self._page(request, repos, lambda repo: _model_json(repo, keys, blobs=False))

    def _model_info(self, request: _Request, repo: Repo, revision: str) -> _Response:
        self._revision(repo, revision)
        if self.tamper.info_body is not None:
            return _Response(200, {"Content-Type": "application/json"}, self.tamper.info_body)
        keys = _expand_keys(request) or INFO_FIELDS
        info = _model_json(repo, keys, blobs=request.flag("blobs"))
        if self.tamper.sha is not None and "sha" in info:
            info["sha"] = self.tamper.sha
        return _json(info)

    def _revision(self, repo: Repo, revision: str) -> str:
        if self.tamper.sha is not None and revision == self.tamper.sha:
            return revision
        return _resolve_revision(repo, revision)

    def _tree(self, request: _Request, repo: Repo, revision: str, path: str) -> _Response:
        self._revision(repo, revision)
        entries = _tree_entries(repo.files, path.strip("/"), recursive=request.flag("recursive"))
        return self._page(request, entries, lambda entry: entry)

    def _page(self, request: _Request, items: list[Any], render: Callable[[Any], object]) -> _Response:
        size = _page_size(request)
        offset = _decode_cursor(request.first("cursor", ""))
        response = _json([render(item) for item in items[offset : offset + size]])
        if self.tamper.next_page is not None:
            response.headers["Link"] = f'<{self.tamper.next_page}>; rel="next"'
        elif offset + size < len(items):
            pairs = [(key, value) for key, value in request.pairs if key != "cursor"]
            url = f"{self.endpoint}{request.path}?{urlencode([*pairs, ('cursor', _encode_cursor(offset + size))])}"
            response.headers["Link"] = f'<{url}>; rel="next"'
        return response

    def _resolve(self, request: _Request, repo: Repo, revision: str, path: str) -> _Response:
        sha = self._revision(repo, revision)
        self._check_gate(repo, request.token)
        file = repo.files.get(path)
        if file is None:
            raise HubError(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": sha})
        if self.tamper.redirect_to and file.sha256:
            return _redirect(file, sha, f"{self.tamper.redirect_to}/{file.sha256}")
        if path in self.tamper.swapped:
            file = replace(file, source=self.tamper.swapped[path], size=len(self.tamper.swapped[path]))
        extra = self.tamper.padding.get(path, 0) if request.method == "GET" else 0
        if extra:
            file = replace(file, source=file.read() + b"\0" * extra, size=file.size + extra)
        response = _file_response(file, sha, request.range)
        self._tamper_headers(response)
        if request.method == "GET":
            response.cut_after = self._take_fault(repo.repo_id, path)
        return response

    def _tamper_headers(self, response: _Response) -> None:
        tamper = self.tamper
        if tamper.etag is not None:
            response.headers["ETag"] = f'"{tamper.etag}"'
            if "X-Linked-Etag" in response.headers:
                response.headers["X-Linked-Etag"] = f'"{tamper.etag}"'
        for name, value in tamper.headers.items():
            response.headers[name] = value
        response.headers = {name: value for name, value in response.headers.items() if value}

    def _check_gate(self, repo: Repo, token: str | None) -> None:
        if not repo.gated or token in self._grants.get(repo.repo_id, set()):
            return
        restricted = f"Access to model {repo.repo_id} is restricted"
        if token is None:
            raise HubError(
                401, f"{restricted}. You must have access to it and be authenticated to access it.", "GatedRepo"
            )
        raise HubError(403, f"{restricted} and you are not in the authorized list.", "GatedRepo")


# --- pure helpers ----------------------------------------------------------------------------------


def _gated(value: bool | str) -> Gated:
    if value in (False, "false", "False"):
        return False
    return "manual" if value == "manual" else "auto"


def _json(payload: object) -> _Response:
    return _Response(200, {"Content-Type": "application/json"}, json.dumps(payload).encode())


def _resolve_revision(repo: Repo, revision: str) -> str:
    if revision not in ("main", repo.sha):
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
    return repo.sha


def _matches(repo: Repo, request: _Request) -> bool:
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


def _sort(request: _Request, repos: list[Repo]) -> list[Repo]:
    name = request.first("sort", "")
    if not name:
        return repos
    key = SORT_KEYS.get(SORT_ALIASES.get(name, name))
    if key is None:
        raise HubError(400, f"Invalid sort: {name}")
    by_id = sorted(repos, key=lambda repo: repo.repo_id)
    return sorted(by_id, key=key, reverse=request.first("direction", "-1") != "1")


def _page_size(request: _Request) -> int:
    try:
        limit = int(request.first("limit", str(PAGE_SIZE)))
    except ValueError:
        raise HubError(400, "Invalid limit") from None
    if limit < 1:
        raise HubError(400, "Invalid limit")
    return min(limit, PAGE_SIZE)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor))["offset"])
    except (ValueError, KeyError, TypeError):
        raise HubError(400, "Invalid cursor") from None


def _expand_keys(request: _Request) -> tuple[str, ...]:
    expand = request.query.get("expand", [])
    unknown = sorted(set(expand) - EXPANDABLE)
    if unknown:
        raise HubError(400, f"Invalid expand property: {', '.join(unknown)}")
    return ("_id", "id", *expand) if expand else ()


def _list_keys(request: _Request) -> tuple[str, ...]:
    expanded = _expand_keys(request)
    if expanded:
        return expanded
    keys = FULL_FIELDS if request.flag("full") else LIST_FIELDS
    return (*keys, "cardData") if request.flag("cardData") else keys


def _model_json(repo: Repo, keys: Iterable[str], *, blobs: bool) -> dict[str, object]:
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


def _tree_entries(files: Mapping[str, HubFile], path: str, *, recursive: bool) -> list[dict[str, object]]:
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


def _file_response(file: HubFile, sha: str, range_header: str | None) -> _Response:
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{file.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    if file.is_lfs:
        headers |= {"X-Linked-Etag": f'"{file.etag}"', "X-Linked-Size": str(file.size)}
    span = _parse_range(range_header, file.size)
    if span is None:
        return _Response(200, headers, file=file, length=file.size)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
    return _Response(206, headers, file=file, start=start, length=end - start)


def _redirect(file: HubFile, sha: str, location: str) -> _Response:
    """The Hub's answer for an LFS file stored on a CDN: a redirect that carries the file's metadata."""
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{file.etag}"',
        "X-Linked-Etag": f'"{file.etag}"',
        "X-Linked-Size": str(file.size),
        "Location": location,
    }
    return _Response(302, headers)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single `bytes=` range, None for no range; 416 if unsatisfiable."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip() != "bytes" or not dash or "," in spec or not (first or last):
        raise HubError(416, f"Unsupported range: {header}", **{"Content-Range": f"bytes */{size}"})
    if not first:
        start, end = max(size - int(last), 0), size
    else:
        start, end = int(first), min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        raise HubError(416, f"Range not satisfiable: {header}", **{"Content-Range": f"bytes */{size}"})
    return start, end


# --- HTTP plumbing ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], hub: FakeHub) -> None:
        self.hub = hub
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer's reverse DNS lookup of the host, which can take seconds.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up mid-response
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body
    timeout = 60
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    def _serve(self) -> None:
        hub = self.server.hub
        request = self._request()
        hub._record(request)
        if hub.delay:
            time.sleep(hub.delay)
        response = hub._handle(request)
        try:
            self._send(response)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _request(self) -> _Request:
        url = urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        return _Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            pairs=parse_qsl(url.query, keep_blank_values=True),
            token=token or None,
            range=self.headers.get("Range"),
        )

    def _send(self, response: _Response) -> None:
        length = response.length if response.file is not None else len(response.body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        count = length if response.cut_after is None else min(response.cut_after, length)
        if response.file is None:
            self.wfile.write(response.body[:count])
        elif count:
            self._stream(response.file, response.start, count)
        if count < length:
            self.close_connection = True

    def _stream(self, file: HubFile, start: int, count: int) -> None:
        if isinstance(file.source, Path):
            with file.source.open("rb") as handle:
                self.connection.sendfile(handle, start, count)
            return
        view = memoryview(file.source)
        for offset in range(start, start + count, STREAM_CHUNK):
            self.wfile.write(view[offset : min(offset + STREAM_CHUNK, start + count)])
