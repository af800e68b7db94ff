"""A small local HTTP server speaking the parts of the registry API v2 and ACR's OAuth2 the workbench uses.

Auth modes: `basic` (distribution with htpasswd), `bearer` (a token realm taking basic auth, as
distribution's token auth does) and `acr` (Azure Container Registry: `POST /oauth2/exchange` turns
an Azure AD token into a refresh token; `/oauth2/token` turns a refresh token, by POST or as the
basic-auth password of the null-GUID user, into an access token). Every request is recorded.

An ACR is only ever spoken to over HTTPS at an `*.azurecr.io` name: `login_server` gives the fake
that name and `RouteTransport` carries a client's requests for it to the fake on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
ACR_USER = "00000000-0000-0000-0000-000000000000"
AAD_TOKEN = "aad-token-for-tests"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: str


def fake_jwt(exp: float, **claims: Any) -> str:
    """An unsigned JWT-shaped token with an `exp` claim (what ACR's refresh tokens look like)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(exp), **claims})}.sig"


@dataclass
class FakeRegistry:
    """`with FakeRegistry(...) as registry:` serves on 127.0.0.1; `registry.server` is `host:port`."""

    auth: str = "basic"
    username: str = "workbench"
    password: str = "secret"
    port: int = 0
    refresh_lifetime_s: float = 3 * 3600
    repos: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Repository -> tag -> manifest (JSON object)."""
    seen: list[Seen] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    page_size: int = 2
    login_server: str = ""
    """The name clients use (e.g. `wbtest.azurecr.io`, over HTTPS through `RouteTransport`); empty: `server`."""

    def __enter__(self) -> FakeRegistry:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def service(self) -> str:
        """The registry's name in token requests and challenges."""
        return self.login_server or self.server

    @property
    def base_url(self) -> str:
        return f"https://{self.login_server}" if self.login_server else f"http://{self.server}"

    def add_image(self, repository: str, tag: str, layers: tuple[int, ...] = (1000, 2000)) -> str:
        """Store a manifest under `repository:tag`; returns its digest."""
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 500,
                "digest": "sha256:c",
            },
            "layers": [{"mediaType": "l", "size": size, "digest": f"sha256:{i}"} for i, size in enumerate(layers)],
        }
        self.repos.setdefault(repository, {})[tag] = manifest
        return digest_of(manifest)

    def issue_refresh_token(self) -> str:
        token = fake_jwt(time.time() + self.refresh_lifetime_s, n=len(self.refresh_tokens))
        self.refresh_tokens.append(token)
        return token

    def issue_access_token(self) -> str:
        token = f"access-{len(self.access_tokens)}"
        self.access_tokens.append(token)
        return token


def digest_of(manifest: dict[str, Any]) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def _handler(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _record(self) -> str:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            registry.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            return body

        def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(value).encode()
            self.send_response(status)
            for key, header in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(key, header)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _basic_ok(self, user: str, password: str) -> bool:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            got = base64.b64decode(header[6:]).decode()
            return got == f"{user}:{password}"

        def _authorized(self) -> bool:
            if registry.auth == "basic":
                return self._basic_ok(registry.username, registry.password)
            header = self.headers.get("Authorization", "")
            return header.startswith("Bearer ") and header[7:] in registry.access_tokens

        def _challenge(self, scope: str) -> None:
            if registry.auth == "basic":
                value = 'Basic realm="fake-registry"'
            else:
                path = "/oauth2/token" if registry.auth == "acr" else "/token"
                realm = f"{registry.base_url}{path}"
                value = f'Bearer realm="{realm}",service="{registry.service}"' + (f',scope="{scope}"' if scope else "")
            errors = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
            self._json(401, errors, {"WWW-Authenticate": value, "Docker-Distribution-API-Version": "registry/2.0"})

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            self._record()
            url = urllib.parse.urlsplit(self.path)
            if url.path in ("/token", "/oauth2/token"):
                self._token_by_basic()
                return
            parts = url.path.strip("/").split("/")
            scope = f"repository:{'/'.join(parts[1:-2])}:pull" if len(parts) > 3 else ""
            if not self._authorized():
                self._challenge(scope)
                return
            if url.path == "/v2/":
                self._json(200, {})
            elif len(parts) >= 4 and parts[-2:] == ["tags", "list"]:
                self._tags("/".join(parts[1:-2]), urllib.parse.parse_qs(url.query))
            elif len(parts) >= 4 and parts[-2] == "manifests":
                self._manifest("/".join(parts[1:-2]), parts[-1])
            else:
                self._json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

        def _tags(self, repository: str, query: dict[str, list[str]]) -> None:
            if repository not in registry.repos:
                self._json(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]})
                return
            tags = sorted(registry.repos[repository])
            last = query.get("last", [""])[0]
            page = [tag for tag in tags if tag > last][: registry.page_size]
            headers = {}
            if page and page[-1] != tags[-1]:
                headers["Link"] = f'</v2/{repository}/tags/list?n={registry.page_size}&last={page[-1]}>; rel="next"'
            self._json(200, {"name": repository, "tags": page}, headers)

        def _manifest(self, repository: str, tag: str) -> None:
            manifest = registry.repos.get(repository, {}).get(tag)
            if manifest is None:
                self._json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
                return
            headers = {"Docker-Content-Digest": digest_of(manifest), "Content-Type": MANIFEST_TYPE}
            self._json(200, manifest, headers)

        def _token_by_basic(self) -> None:
            good = (
                self._basic_ok(registry.username, registry.password)
                if registry.auth == "bearer"
                else any(self._basic_ok(ACR_USER, token) for token in registry.refresh_tokens)
            )
            if not good:
                self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                return
            self._json(200, {"token": registry.issue_access_token()})

        def do_POST(self) -> None:
            form = {key: values[0] for key, values in urllib.parse.parse_qs(self._record()).items()}
            path = urllib.parse.urlsplit(self.path).path
            if path == "/oauth2/exchange" and registry.auth == "acr":
                ok = form.get("grant_type") == "access_token" and form.get("access_token") == AAD_TOKEN
                if ok and form.get("service") == registry.service:
                    self._json(200, {"refresh_token": registry.issue_refresh_token()})
                else:
                    self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid AAD token"}]})
            elif path == "/oauth2/token" and registry.auth == "acr":
                if form.get("grant_type") == "refresh_token" and form.get("refresh_token") in registry.refresh_tokens:
                    self._json(200, {"access_token": registry.issue_access_token()})
                else:
                    self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]})
            else:
                self._json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

    return Handler


class RouteTransport(httpx.BaseTransport):
    """The network, in tests: requests for a routed host name go, as plain HTTP, to a local fake
    (`{"wbtest.azurecr.io": "127.0.0.1:5123"}`); any other host is unreachable."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = routes
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = self.routes.get(request.url.host)
        if target is None:
            raise httpx.ConnectError(f"no route to {request.url.host}", request=request)
        host, port = target.rsplit(":", 1)
        request.url = request.url.copy_with(scheme="http", host=host, port=int(port))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
