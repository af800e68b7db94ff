"""The Hugging Face Hub: search, model details with a fit estimate, and downloads into the HF cache.

Everything goes through the real `huggingface_hub` client, so a mirror or a local server set as
the endpoint behaves like the Hub. Tokens are handed to the client and never formatted into
messages; errors are translated into `services.errors` with a next step for the user.

The hub's answers are untrusted: the token goes only to the endpoint's own origin (scheme, host
and port; a redirect or a next-page link elsewhere gets none or is refused), every commit id,
file name, ETag and size is checked before it becomes a path (see `services.transfer`), and an
answer that is not what a Hub sends is a `HubResponseError`, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

from services.errors import (
    AccessDeniedError,
    HubResponseError,
    HubUnavailableError,
    InsufficientDiskError,
    NotFoundError,
    UsageError,
    WorkbenchError,
)
from services.progress import CancelToken, OnTransfer, TransferMeter

if TYPE_CHECKING:
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import ModelInfo

    from services import transfer

DEFAULT_ENDPOINT = "https://huggingface.co"
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
WEIGHT_FORMATS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite")
DISK_HEADROOM_BYTES = 64 * 1024**2
MAX_REDIRECTS = 5
MALFORMED_HINT = "check hub.endpoint: the hub or mirror answered with something a Hub does not send"


@dataclass(frozen=True)
class HubConnection:
    """How to reach the hub and where its cache lives; built from settings by the caller."""

    endpoint: str | None = None
    token: str | None = field(default=None, repr=False)
    cache_dir: Path | None = None
    timeout: float = 5.0

    @property
    def url(self) -> str:
        return (self.endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    @property
    def cache_path(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)

    def api(self) -> HfApi:
        from huggingface_hub import HfApi

        configure_http(self.timeout)
        return HfApi(endpoint=self.url, token=self.token)


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


@dataclass(frozen=True)
class RepoFile:
    """A file in a model repository."""

    path: str
    size: int
    selected: bool
    sha256: str | None = None
    """The content sha256 the hub publishes for an LFS file; None for files kept in git."""


@dataclass(frozen=True)
class ModelDetails:
    """What the detail pane and `models info` show."""

    id: str
    sha: str
    task: str | None
    library: str | None
    license: str | None
    gated: bool
    access: bool
    params: int | None
    files: tuple[RepoFile, ...]
    card: str
    config: dict[str, Any] | None

    @property
    def download_bytes(self) -> int:
        """Bytes of the files a default download actually fetches."""
        return sum(f.size for f in self.files if f.selected)


@dataclass(frozen=True)
class DownloadResult:
    """Where a download landed and what it moved."""

    repo_id: str
    revision: str
    path: Path
    files: tuple[str, ...]
    fetched_bytes: int
    seconds: float


_http_timeout: float | None = None


def configure_http(timeout: float) -> None:
    """Give huggingface_hub's shared HTTP client our timeout (its default waits forever)."""
    global _http_timeout
    if _http_timeout == timeout:
        return
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import hf_request_event_hook

    def factory() -> httpx2.Client:
        return httpx2.Client(
            event_hooks={"request": [hf_request_event_hook]},
            follow_redirects=True,
            timeout=httpx2.Timeout(timeout),
        )

    set_client_factory(factory)
    _http_timeout = timeout


def offline_mode() -> bool:
    """True when `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is set."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(f and f.upper() in {"1", "ON", "YES", "TRUE"} for f in flags)


def check_online(conn: HubConnection) -> None:
    """Raise `HubUnavailableError` unless the hub answers within the connection's timeout."""
    if offline_mode():
        raise _offline_error(conn)
    with hub_errors(conn, "the hub"):
        next(_pages(conn, f"{conn.url}/api/models", {"limit": 1}))


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
        raise _offline_error(conn)
    params = _search_params(query, task, library, license, gated, sort, page_size)
    items = (item for page in _pages(conn, f"{conn.url}/api/models", params) for item in page)
    return ModelPager(conn, items, page_size)


def _pages(conn: HubConnection, url: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Pages of a hub listing, following `Link: rel="next"` headers.

    Like huggingface_hub's `paginate`, but without its retry back-off (up to 23 s on a dead
    host): a search box must say "unreachable" within the configured timeout.
    """
    from huggingface_hub import get_session
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

    configure_http(conn.timeout)
    headers = build_hf_headers(token=conn.token)
    next_url: str | None = url
    while next_url is not None:
        response = get_session().get(next_url, params=params if next_url == url else None, headers=headers)
        hf_raise_for_status(response)
        yield _listing(response)
        next_url = _next_page(conn, response)


def _listing(response: httpx2.Response) -> list[dict[str, Any]]:
    """One page of a hub listing: a JSON list of objects, or `HubResponseError`."""
    with malformed_answers("search"):
        page = response.json()
    if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
        raise HubResponseError("search: the hub sent a listing that is not a JSON list of models", hint=MALFORMED_HINT)
    return page


def _next_page(conn: HubConnection, response: httpx2.Response) -> str | None:
    """The `Link: rel="next"` URL; refused when it leaves the hub's origin, which would get the token."""
    link = response.links.get("next", {}).get("url")
    if link is None:
        return None
    url = urljoin(str(response.url), link)
    if not same_origin(url, conn.url):
        raise HubResponseError(
            f"search: the hub's next page is on another host ({urlsplit(url).netloc}); not following it",
            hint=MALFORMED_HINT,
        )
    return url


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port: the only host the hub token may go to is the hub's own."""
    return _origin(url) == _origin(other)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # an invalid port
        return None


def _headers_for(conn: HubConnection, url: str) -> dict[str, str]:
    """Request headers for `url`: the token only when `url` is on the hub's own origin."""
    from huggingface_hub.utils import build_hf_headers

    token: str | bool | None = conn.token if same_origin(url, conn.url) else False  # False: no token at all
    return dict(build_hf_headers(token=token))


@contextmanager
def malformed_answers(what: str) -> Iterator[None]:
    """Turn a parse error on a hub's answer (not JSON, wrong types or shape) into `HubResponseError`."""
    from huggingface_hub.errors import HFValidationError

    try:
        yield
    except HFValidationError:
        raise  # the user's own input: hub_errors reports it
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise HubResponseError(
            f"{what}: the hub sent a malformed answer ({type(exc).__name__}: {detail})", hint=MALFORMED_HINT
        ) from None


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
        license=_license(info),
        gated=bool(info.gated),
        updated=info.last_modified,
    )


def _license(info: ModelInfo) -> str | None:
    card = info.card_data.to_dict() if info.card_data else {}
    if card.get("license"):
        return str(card["license"])
    tags = info.tags or []
    return next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)


def model_details(
    conn: HubConnection,
    repo_id: str,
    *,
    revision: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> ModelDetails:
    """Files, sizes, parameter count, licence, gating and access, card and config of one model."""
    what = f"model '{repo_id}'" + (f" at revision '{revision}'" if revision else "")
    with hub_errors(conn, what, repo_id=repo_id), malformed_answers(what):
        if offline_mode():
            raise _offline_error(conn)
        api = conn.api()
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
        sha, files = _checked_listing(info, what)
        access = _has_access(conn, repo_id, sha, files, info)
        texts = _fetch_texts(conn, repo_id, sha, ("README.md", "config.json")) if access else {}
        return ModelDetails(
            id=info.id,
            sha=sha,
            task=info.pipeline_tag,
            library=info.library_name,
            license=_license(info),
            gated=bool(info.gated),
            access=access,
            params=_param_count(api, info, access),
            files=select_files(files, include=include, exclude=exclude),
            card=_strip_front_matter(texts.get("README.md", "")),
            config=_config(texts, what),
        )


def _checked_listing(info: ModelInfo, what: str) -> tuple[str, list[RepoFile]]:
    """The commit id and files of a model answer, refused unless each is safe to use as a path."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from services.transfer import check_commit

    try:
        validate_repo_id(info.id)
    except HFValidationError:
        raise HubResponseError(f"{what}: the hub named the model {info.id!r}", hint=MALFORMED_HINT) from None
    sha = check_commit(info.sha, what=what)
    return sha, [_repo_file(sibling, what) for sibling in info.siblings or []]


def _repo_file(sibling: Any, what: str) -> RepoFile:
    from services.transfer import check_name, check_size

    name = check_name(sibling.rfilename, what=what)
    size = sibling.size if sibling.size is not None else (sibling.lfs.size if sibling.lfs else 0)
    sha256 = sibling.lfs.sha256 if sibling.lfs else None
    if sha256 is not None and not (isinstance(sha256, str) and len(sha256) == 64):
        raise HubResponseError(f"{what}: the hub published {sha256!r} as sha256 of {name}", hint=MALFORMED_HINT)
    return RepoFile(name, check_size(size, what=f"{what}: {name}"), False, sha256)


def _config(texts: dict[str, str], what: str) -> dict[str, Any] | None:
    """The parsed config.json, None when the repo has none; `HubResponseError` when it is not a JSON object."""
    if "config.json" not in texts:
        return None
    try:
        config = json.loads(texts["config.json"])
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise HubResponseError(
            f"{what}: config.json is not a JSON object", hint="the repo's config.json is broken; try another revision"
        )
    return config


def select_files(
    files: list[RepoFile], *, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
) -> tuple[RepoFile, ...]:
    """Mark the files a download fetches.

    With `include` patterns only matching files are fetched. Without them, when a repo has
    safetensors weights, the same weights in other formats (`.bin`, `.h5`, `.msgpack`, ONNX, ...)
    are skipped, like `from_pretrained` would. `exclude` patterns always apply.
    """
    from huggingface_hub.utils import filter_repo_objects

    names = [f.path for f in files]
    skip = list(exclude)
    if not include and any(n.endswith(".safetensors") for n in names):
        skip += [*WEIGHT_FORMATS, "onnx/*", "openvino/*", "coreml/*"]
    chosen = set(filter_repo_objects(names, allow_patterns=list(include) or None, ignore_patterns=skip))
    return tuple(replace(f, selected=f.path in chosen) for f in files)


def _has_access(conn: HubConnection, repo_id: str, sha: str, files: list[RepoFile], info: ModelInfo) -> bool:
    if not info.gated:
        return True
    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import GatedRepoError

    first = files[0].path if files else "config.json"
    try:
        _head(conn, hf_hub_url(repo_id, first, revision=sha, endpoint=conn.url))
    except GatedRepoError:
        return False
    return True


def _head(conn: HubConnection, url: str) -> tuple[httpx2.Response, str]:
    """HEAD a resolve URL, following redirects only within the hub's origin (the token never leaves it).

    Returns the last answer and where to GET the file: a redirect to another origin (a CDN) carries
    the file's metadata itself, as on the Hub.
    """
    from huggingface_hub import get_session
    from huggingface_hub.utils import hf_raise_for_status

    for _ in range(MAX_REDIRECTS):
        headers = {**_headers_for(conn, url), "Accept-Encoding": "identity"}
        response = get_session().head(url, headers=headers, follow_redirects=False)
        if not response.has_redirect_location:
            hf_raise_for_status(response)
            return response, url
        target = urljoin(url, response.headers["Location"])
        if urlsplit(target).scheme not in ("http", "https"):
            raise HubResponseError(f"{url}: the hub redirected to {target[:80]!r}", hint=MALFORMED_HINT)
        if not same_origin(target, conn.url):
            return response, target
        url = target
    raise HubResponseError(f"{url}: more than {MAX_REDIRECTS} redirects on the hub", hint=MALFORMED_HINT)


def _fetch_texts(conn: HubConnection, repo_id: str, sha: str, names: tuple[str, ...]) -> dict[str, str]:
    """Small text files read straight over HTTP, so looking at a model leaves no trace in the cache."""
    from huggingface_hub import get_session, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers(token=conn.token)
    texts = {}
    for name in names:
        url = hf_hub_url(repo_id, name, revision=sha, endpoint=conn.url)
        response = get_session().get(url, headers=headers)
        if response.status_code == 200:
            texts[name] = response.text
    return texts


def _param_count(api: HfApi, info: ModelInfo, access: bool) -> int | None:
    if info.safetensors:
        return info.safetensors.total
    if not access or not any(s.rfilename.endswith(".safetensors") for s in info.siblings or []):
        return None
    from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError

    try:
        meta = api.get_safetensors_metadata(info.id, revision=info.sha)
    except (NotASafetensorsRepoError, SafetensorsParsingError):
        return None
    return sum(meta.parameter_count.values())


def _strip_front_matter(card: str) -> str:
    if card.startswith("---"):
        end = card.find("\n---", 3)
        if end != -1:
            return card[end + 4 :].lstrip("\n")
    return card


def require_access(conn: HubConnection, details: ModelDetails) -> None:
    """Raise `AccessDeniedError` (saying how to get access) when the token may not download the model."""
    if details.gated and not details.access:
        raise _gated_error(conn, details.id)


def download_model(
    conn: HubConnection,
    repo_id: str,
    *,
    revision: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    on_progress: OnTransfer | None = None,
    cancel: CancelToken | None = None,
    max_workers: int = 8,
) -> DownloadResult:
    """Download a model into the HF cache; resumable, cancellable, refused when disk is short.

    Complete files are skipped and partial files continue where they stopped, so running it
    again after an interruption (cancel, crash, dropped network) finishes the download.
    """
    from services import transfer

    details = model_details(conn, repo_id, revision=revision, include=include, exclude=exclude)
    require_access(conn, details)
    cache = conn.cache_path
    files = _remote_files(conn, details)
    present = transfer.bytes_present(cache, repo_id, files)
    ensure_disk(cache, sum(f.size for f in files) - present, what=repo_id)
    with hub_errors(conn, f"download of '{repo_id}'", repo_id=repo_id):
        meter = TransferMeter(sum(f.size for f in files), on_progress)
        meter.skip(present)
        started = time.monotonic()
        path = transfer.fetch_files(
            cache,
            repo_id,
            details.sha,
            files,
            headers_for=lambda url: _headers_for(conn, url),
            on_bytes=meter.add,
            should_stop=lambda: cancel is not None and cancel.cancelled,
            max_workers=max_workers,
        )
        transfer.write_ref(cache, repo_id, revision or "main", details.sha)
    meter.finish()
    return DownloadResult(
        repo_id=repo_id,
        revision=details.sha,
        path=path,
        files=tuple(f.path for f in files),
        fetched_bytes=meter.done_bytes - present,
        seconds=time.monotonic() - started,
    )


def missing_bytes(conn: HubConnection, details: ModelDetails) -> int:
    """Bytes a download of `details` still has to fetch: complete and partial files count as present."""
    from services import transfer

    files = _remote_files(conn, details)
    return sum(f.size for f in files) - transfer.bytes_present(conn.cache_path, details.id, files)


def _remote_files(conn: HubConnection, details: ModelDetails) -> list[transfer.RemoteFile]:
    with hub_errors(conn, f"download of '{details.id}'", repo_id=details.id):
        return [_remote_file(conn, details.id, details.sha, f) for f in details.files if f.selected]


def _remote_file(conn: HubConnection, repo_id: str, sha: str, f: RepoFile) -> transfer.RemoteFile:
    """Where to GET one file, its ETag and size (a HEAD request), checked against the listing."""
    from huggingface_hub import hf_hub_url

    from services.transfer import RemoteFile, check_commit, check_etag, check_size

    what = f"{repo_id}/{f.path}"
    response, location = _head(conn, hf_hub_url(repo_id, f.path, revision=sha, endpoint=conn.url))
    headers = response.headers
    commit = check_commit(headers.get("X-Repo-Commit"), what=what)
    etag = check_etag(_normalize_etag(headers.get("X-Linked-Etag") or headers.get("ETag")), what=what)
    length = headers.get("X-Linked-Size") or (None if response.is_redirect else headers.get("Content-Length"))
    size = check_size(length, what=what)
    mismatch = _mismatch(commit != sha, f.sha256 not in (None, etag), bool(f.size) and size != f.size)
    if mismatch:
        raise HubResponseError(f"{what}: the file's {mismatch} differs from the model listing", hint=MALFORMED_HINT)
    return RemoteFile(f.path, location, etag, size)


def _normalize_etag(etag: str | None) -> str | None:
    """An ETag header without quotes or weak marker, as huggingface_hub reads it."""
    return etag.lstrip("W/").strip('"') if etag else None


def _mismatch(commit: bool, sha256: bool, size: bool) -> str:
    """Which of the HEAD answer's commit, sha256 and size disagree with the listing ("" when none)."""
    return ", ".join(name for name, bad in (("commit", commit), ("sha256", sha256), ("size", size)) if bad)


def ensure_disk(path: Path, needed: int, *, what: str) -> None:
    """Raise `InsufficientDiskError` when `needed` bytes do not fit on the disk holding `path`."""
    free = free_disk(path)
    if needed + DISK_HEADROOM_BYTES > free:
        raise InsufficientDiskError(
            f"{what} needs {human_bytes(needed)} but only {human_bytes(free)} is free at {path}",
            hint="free disk space or point hub.cache_dir at a larger disk",
        )


def free_disk(path: Path) -> int:
    """Free bytes on the disk that holds `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@contextmanager
def hub_errors(conn: HubConnection, what: str, *, repo_id: str | None = None) -> Iterator[None]:
    """Translate huggingface_hub and HTTP errors into workbench errors with a next step."""
    import httpx2
    from huggingface_hub import errors as hf

    try:
        yield
    except hf.GatedRepoError:
        raise _gated_error(conn, repo_id or what) from None
    except hf.RepositoryNotFoundError:
        raise NotFoundError(
            f"{what} not found on {conn.url}",
            hint="check the id with `workbench models search`, or set HF_TOKEN if it is private",
        ) from None
    except hf.RevisionNotFoundError:
        raise NotFoundError(f"{what}: revision not found", hint="check the branch, tag or commit") from None
    except hf.RemoteEntryNotFoundError as exc:
        raise NotFoundError(f"{what}: file not found ({exc.response.url.path})") from None
    except hf.HFValidationError as exc:
        raise UsageError(f"{what}: {str(exc).splitlines()[0]}") from None
    except (hf.OfflineModeIsEnabled, httpx2.TransportError) as exc:
        raise _offline_error(conn, exc) from None
    except hf.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        detail = (exc.server_message or "no details from the server").splitlines()[0]
        raise WorkbenchError(f"{what} failed: hub answered HTTP {status}: {detail}") from None
    except OSError as exc:  # writing the cache: disk full, permissions, a file where a folder must be
        raise WorkbenchError(f"{what}: {exc.strerror or exc} ({exc.filename or 'the cache'})") from None


def _gated_error(conn: HubConnection, repo_id: str) -> AccessDeniedError:
    return AccessDeniedError(
        f"{repo_id} is gated and the configured token has no access",
        hint=f"accept the licence at {conn.url}/{repo_id} and set HF_TOKEN (or `hf auth login`)",
    )


def _offline_error(conn: HubConnection, exc: Exception | None = None) -> HubUnavailableError:
    if exc is None:
        return HubUnavailableError("hub offline: HF_HUB_OFFLINE is set; local models still work")
    reason = type(exc).__name__
    return HubUnavailableError(
        f"hub unreachable: {conn.url} ({reason}, timeout {conn.timeout:g} s); local models still work",
        hint="check the network or hub.endpoint",
    )
