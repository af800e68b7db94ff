"""What the fake hub answers: routing a request to the model API or to a file resolve."""

from __future__ import annotations

import posixpath
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from .file_answers import file_response, redirect_response
from .listing import decode_cursor, encode_cursor, matches, page_size, sort_repos, tree_entries
from .model_json import INFO_FIELDS, expand_keys, list_keys, model_json
from .repos import Repo
from .tampering import tamper_headers, tampered_file
from .wire import HubError, HubRequest, HubResponse, json_response

if TYPE_CHECKING:
    from .server import FakeHub


class HubRoutes:
    """Answers requests from the repos, grants, faults and tampering of one `FakeHub`."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub

    def answer(self, request: HubRequest) -> HubResponse:
        """The answer to `request`; errors of the fake itself answer 500 and print a traceback."""
        try:
            self._check_token(request.token)
            return self._route(request)
        except HubError as error:
            return error.response()
        except Exception as error:  # a bug in the fake: answer 500 and show it in the test output
            traceback.print_exc()
            return HubError(500, f"FakeHub error: {error!r}").response()

    def _check_token(self, token: str | None) -> None:
        tokens = self.hub.tokens
        if token is not None and tokens is not None and token not in tokens:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _route(self, request: HubRequest) -> HubResponse:
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
        for repo in self.hub.all_repos():
            for name in (n for n in repo.files if ".." in n.split("/")):
                for sha in {repo.sha, self.hub.tamper.sha or repo.sha}:
                    if posixpath.normpath(f"/{repo.repo_id}/resolve/{sha}/{name}") == path:
                        return repo, name
        return None

    def _api_models(self, request: HubRequest, parts: list[str]) -> HubResponse:
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
            repo = self.hub.find_repo("/".join(parts[:width]))
            if repo is not None:
                return repo, parts[width:]
        raise HubError(404, "Repository not found", "RepoNotFound")

    def _list_models(self, request: HubRequest) -> HubResponse:
        if self.hub.tamper.info_body is not None:
            return HubResponse(200, {"Content-Type": "application/json"}, self.hub.tamper.info_body)
        repos = sort_repos(request, [repo for repo in self.hub.all_repos() if matches(repo, request)])
        keys = list_keys(request)
        return self._page(request, repos, lambda repo: model_json(repo, keys, blobs=False))

    def _model_info(self, request: HubRequest, repo: Repo, revision: str) -> HubResponse:
        self._revision(repo, revision)
        tamper = self.hub.tamper
        if tamper.info_body is not None:
            return HubResponse(200, {"Content-Type": "application/json"}, tamper.info_body)
        keys = expand_keys(request) or INFO_FIELDS
        info = model_json(repo, keys, blobs=request.flag("blobs"))
        if tamper.sha is not None and "sha" in info:
            info["sha"] = tamper.sha
        return json_response(info)

    def _revision(self, repo: Repo, revision: str) -> str:
        if self.hub.tamper.sha is not None and revision == self.hub.tamper.sha:
            return revision
        if revision not in ("main", repo.sha):
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.sha

    def _tree(self, request: HubRequest, repo: Repo, revision: str, path: str) -> HubResponse:
        self._revision(repo, revision)
        entries = tree_entries(repo.files, path.strip("/"), recursive=request.flag("recursive"))
        return self._page(request, entries, lambda entry: entry)

    def _page(self, request: HubRequest, items: list[Any], render: Callable[[Any], object]) -> HubResponse:
        size = page_size(request)
        offset = decode_cursor(request.first("cursor", ""))
        response = json_response([render(item) for item in items[offset : offset + size]])
        if self.hub.tamper.next_page is not None:
            response.headers["Link"] = f'<{self.hub.tamper.next_page}>; rel="next"'
        elif offset + size < len(items):
            response.headers["Link"] = f'<{self._next_page_url(request, offset + size)}>; rel="next"'
        return response

    def _next_page_url(self, request: HubRequest, offset: int) -> str:
        pairs = [(key, value) for key, value in request.pairs if key != "cursor"]
        return f"{self.hub.endpoint}{request.path}?{urlencode([*pairs, ('cursor', encode_cursor(offset))])}"

    def _resolve(self, request: HubRequest, repo: Repo, revision: str, path: str) -> HubResponse:
        sha = self._revision(repo, revision)
        self._check_gate(repo, request.token)
        file = repo.files.get(path)
        if file is None:
            raise HubError(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": sha})
        tamper = self.hub.tamper
        if tamper.redirect_to and file.sha256:
            return redirect_response(file, sha, f"{tamper.redirect_to}/{file.sha256}")
        file = tampered_file(tamper, file, path, request.method)
        response = file_response(file, sha, request.range)
        tamper_headers(tamper, response)
        if request.method == "GET":
            response.cut_after = self.hub.take_fault(repo.repo_id, path)
        return response

    def _check_gate(self, repo: Repo, token: str | None) -> None:
        if not repo.gated or self.hub.is_granted(repo.repo_id, token):
            return
        restricted = f"Access to model {repo.repo_id} is restricted"
        if token is None:
            raise HubError(
                401, f"{restricted}. You must have access to it and be authenticated to access it.", "GatedRepo"
            )
        raise HubError(403, f"{restricted} and you are not in the authorized list.", "GatedRepo")
