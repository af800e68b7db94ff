"""A local HTTP server speaking the part of the Hugging Face Hub API that `huggingface_hub` uses.

Point the real client at it with `HfApi(endpoint=hub.endpoint)` or the `endpoint=` argument of
`hf_hub_download`/`snapshot_download`. Routes: `GET /api/models`, `GET /api/models/{repo}`,
`GET /api/models/{repo}/revision/{rev}`, `GET /api/models/{repo}/tree/{rev}[/{path}]` and
`HEAD`/`GET /{repo}/resolve/{rev}/{path}`; anything else answers 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .repos import (
    EPOCH,
    FileSource,
    Gated,
    Repo,
    commit_sha,
    folder_files,
    hub_file,
    safetensors_parameters,
    synthetic_repos,
)
from .routes import HubRoutes
from .tampering import Tampering
from .transport import HubHttpServer
from .wire import HubRequest, HubResponse, RecordedRequest


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
        self.answering = threading.Event()
        """Cleared, requests wait (at most a minute) until it is set again before they are answered."""
        self.answering.set()
        self._repos: dict[str, Repo] = {}
        self._grants: dict[str, set[str]] = {}
        self._faults: dict[tuple[str | None, str], int] = {}
        self.tamper = Tampering()
        """Hostile answers; the default sends none."""
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self._server: HubHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = HubRoutes(self)

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
            self._server = HubHttpServer((self._host, self._port), self)
            self._port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections, so clients get connection errors."""
        server, self._server = self._server, None
        if server is None:
            return
        self.answering.set()  # no handler left waiting
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

    # --- called by the routes and the HTTP handler (from server threads) -------------------------

    def find_repo(self, repo_id: str) -> Repo | None:
        """The repo `repo_id`, None if unknown."""
        return self._repos.get(repo_id)

    def all_repos(self) -> list[Repo]:
        """Every repo, in the order they were added."""
        return list(self._repos.values())

    def is_granted(self, repo_id: str, token: str | None) -> bool:
        """Whether `token` was given access to the gated repo `repo_id`."""
        return token in self._grants.get(repo_id, set())

    def record(self, request: HubRequest) -> None:
        """Keep `request` in `requests`, without its token."""
        recorded = RecordedRequest(
            request.method, request.path, request.query, request.token is not None, request.range
        )
        with self._lock:
            self.requests.append(recorded)

    def take_fault(self, repo_id: str, filename: str) -> int | None:
        """The byte count after which to cut the next GET of `filename`, once; None for no fault."""
        with self._lock:
            for key in ((repo_id, filename), (None, filename)):
                if key in self._faults:
                    return self._faults.pop(key)
        return None

    def answer(self, request: HubRequest) -> HubResponse:
        """The answer to `request`."""
        return self._routes.answer(request)


def _gated(value: bool | str) -> Gated:
    if value in (False, "false", "False"):
        return False
    return "manual" if value == "manual" else "auto"
