"""Registry credentials and the registry's HTTP API v2 (tags, manifest digests and sizes).

Credentials come from one of three places (`RegistryAccess.auth`):

- `password`: a user name from settings and a password from the environment variable it names;
- `docker-config`: Docker's own config (`DOCKER_CONFIG` or `~/.docker/config.json`) and credential
  helpers, through docker-py's `auth` module, exactly what `docker login` left there;
- `acr`: Azure identity, an Azure AD token exchanged for an ACR refresh token (`services.images.acr`).

The secret is a `SecretStr`: it reaches docker-py only as `auth_config`, the HTTP API only as an
`Authorization` header, and never a message, a log line or argv. The HTTP client follows the
distribution token protocol: a `401` names Basic or a Bearer realm; a bearer token is fetched
per scope with the credentials (or anonymously) and kept for the client's life.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from services.errors import ConfigError, RegistryAuthError, RegistryError
from services.images.acr import acr_credentials
from services.images.credentials import RegistryAccess, RegistryCredentials

if TYPE_CHECKING:
    import httpx

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_NEXT_LINK = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


def resolve_credentials(access: RegistryAccess) -> RegistryCredentials | None:
    """Credentials for `access.server` from the configured source; None: none found (anonymous)."""
    server = access.require_server()
    if access.auth == "password":
        return _password_credentials(access, server)
    if access.auth == "acr":
        return acr_credentials(access)
    return docker_config_credentials(server, access.docker_config)


def _password_credentials(access: RegistryAccess, server: str) -> RegistryCredentials:
    if not access.username:
        raise ConfigError('registry.auth is "password" but registry.username is unset', hint="set [registry] username")
    environ = access.environ if access.environ is not None else os.environ
    password = environ.get(access.password_env)
    if not password:
        raise ConfigError(
            f"registry password variable {access.password_env} is not set",
            hint=f"export {access.password_env} in the shell (never put the password on a command line)",
        )
    source = f"environment {access.password_env}"
    return RegistryCredentials(server, access.username, SecretStr(password), source=source)


def docker_config_credentials(server: str, config_dir: Path | None = None) -> RegistryCredentials | None:
    """What `docker login` stored for `server` (config file or credential helper); None when nothing."""
    from docker import auth, errors

    path = str(config_dir / "config.json") if config_dir is not None else None
    if path is not None and not Path(path).is_file():
        return None
    try:
        entry = auth.load_config(config_path=path).resolve_authconfig(server)
    except errors.DockerException:
        raise RegistryAuthError(
            f"Docker's credential helper failed for {server}",
            hint=f"run `docker login {server}` again, or set registry.auth to password or acr",
        ) from None
    values = {str(key).lower(): value for key, value in (entry or {}).items() if value}
    if values.get("identitytoken"):
        token = SecretStr(values["identitytoken"])
        return RegistryCredentials(server, "<token>", token, identity_token=True, source="Docker config")
    if values.get("username") and values.get("password"):
        return RegistryCredentials(server, values["username"], SecretStr(values["password"]), source="Docker config")
    return None


class RegistryLogin:
    """Credentials resolved once and renewed when they are about to expire (ACR refresh tokens)."""

    def __init__(self, access: RegistryAccess) -> None:
        self.access = access
        self._lock = threading.Lock()
        self._resolved = False
        self._credentials: RegistryCredentials | None = None

    def credentials(self, *, valid_for_s: float = 60.0) -> RegistryCredentials | None:
        """Credentials good for at least `valid_for_s` more seconds (renewed when needed), or None."""
        with self._lock:
            stale = self._credentials is not None and self._credentials.expires_within(valid_for_s)
            if not self._resolved or stale:
                self._credentials = resolve_credentials(self.access)
                self._resolved = True
            return self._credentials


@dataclass(frozen=True)
class Manifest:
    """An image manifest's digest and the compressed size of what it references."""

    digest: str
    media_type: str
    size_bytes: int
    """Config plus layers as stored in the registry (compressed); a list's entries for an index."""


class RegistryClient:
    """The registry's HTTP API v2 for one registry; `close()` (or `with`) when done."""

    def __init__(
        self,
        access: RegistryAccess,
        login: RegistryLogin | None = None,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.server = access.require_server()
        self.login = login or RegistryLogin(access)
        self._client = httpx.Client(
            base_url=f"{access.scheme}://{self.server}",
            timeout=timeout,
            transport=transport,
            trust_env=not access.plain_http,
            verify=ssl.create_default_context(),
            follow_redirects=True,
        )
        self._auth: dict[str, str] = {}
        """Authorization header per scope, once the registry asked for one."""

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def check(self) -> None:
        """Log in to `/v2/` (`RegistryAuthError` when refused, `RegistryError` when unreachable)."""
        self._send("GET", "/v2/", scope="")

    def tags(self, repository: str) -> list[str]:
        """Every tag of `repository`, sorted; [] when the repository does not exist yet."""
        tags: list[str] = []
        url: str | None = f"/v2/{repository}/tags/list"
        while url:
            response = self._send("GET", url, scope=f"repository:{repository}:pull", missing_ok=True)
            if response.status_code == 404:
                return []
            tags += response.json().get("tags") or []
            url = _next_link(response.headers.get("Link"))
        return sorted(set(tags))

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The `Docker-Content-Digest` of `repository:reference` (a HEAD request); None when absent."""
        response = self._send(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            missing_ok=True,
        )
        return None if response.status_code == 404 else response.headers.get("Docker-Content-Digest")

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """Digest, media type and compressed size of `repository:reference`; None when absent."""
        response = self._send(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            missing_ok=True,
        )
        if response.status_code == 404:
            return None
        body = response.json()
        parts = [body.get("config") or {}, *(body.get("layers") or body.get("manifests") or [])]
        return Manifest(
            digest=response.headers.get("Docker-Content-Digest", ""),
            media_type=str(body.get("mediaType") or response.headers.get("Content-Type", "")),
            size_bytes=sum(int(part.get("size") or 0) for part in parts),
        )

    # ------------------------------------------------------------------ auth

    def _send(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response:
        response = self._request(method, url, headers=self._with_auth(headers, scope))
        if response.status_code == 401:
            self._auth[scope] = self._authorize(response.headers.get("WWW-Authenticate", ""), scope)
            response = self._request(method, url, headers=self._with_auth(headers, scope))
        if response.status_code in (401, 403):
            raise self._refused(response)
        if response.status_code == 404 and missing_ok:
            return response
        if response.status_code >= 400:
            raise RegistryError(
                f"registry {self.server} answered {response.status_code} to {method} {url}: {_error_text(response)}"
            )
        return response

    def _with_auth(self, headers: Mapping[str, str] | None, scope: str) -> dict[str, str]:
        merged = dict(headers or {})
        if scope in self._auth:
            merged["Authorization"] = self._auth[scope]
        return merged

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"registry {self.server} cannot be reached: {type(exc).__name__}",
                hint="check registry.login_server and the network (a plain-HTTP test registry needs "
                "registry.plain_http = true)",
            ) from None

    def _authorize(self, challenge: str, scope: str) -> str:
        """The Authorization header the registry's 401 challenge asks for."""
        credentials = self.login.credentials()
        kind, _, params_text = challenge.partition(" ")
        if kind.lower() == "basic":
            if credentials is None or credentials.identity_token:
                raise self._no_credentials()
            return _basic(credentials.username, credentials.secret.get_secret_value())
        if kind.lower() != "bearer":
            raise RegistryError(f"registry {self.server} asks for unknown authentication {kind!r}")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        return f"Bearer {self._bearer_token(params, scope, credentials)}"

    def _bearer_token(self, params: dict[str, str], scope: str, credentials: RegistryCredentials | None) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.server} sent a bearer challenge without a realm")
        form = {"service": params.get("service", self.server), **({"scope": scope} if scope else {})}
        if credentials is not None and credentials.identity_token:
            grant = {**form, "grant_type": "refresh_token", "refresh_token": credentials.secret.get_secret_value()}
            response = self._request("POST", realm, data=grant)
        else:
            auth = {} if credentials is None else {"Authorization": _basic_of(credentials)}
            response = self._request("GET", realm, params=form, headers=auth)
        if response.status_code in (401, 403):
            raise self._refused(response)
        if response.status_code >= 400:
            raise RegistryError(f"registry {self.server} token service answered {response.status_code}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"registry {self.server} token service sent no token")
        return str(token)

    def _refused(self, response: httpx.Response) -> RegistryAuthError:
        credentials = self.login.credentials()
        if credentials is None:
            return self._no_credentials()
        return RegistryAuthError(
            f"registry {self.server} refused the credentials from {credentials.source} "
            f"({response.status_code}: {_error_text(response)})",
            hint=login_hint(self.login.access),
        )

    def _no_credentials(self) -> RegistryAuthError:
        return RegistryAuthError(
            f"registry {self.server} needs a login and none was found", hint=login_hint(self.login.access)
        )


def login_hint(access: RegistryAccess) -> str:
    """What to do when the registry refuses, for the configured way of logging in."""
    server = access.server or "<registry>"
    if access.auth == "password":
        return f"check registry.username and the password in {access.password_env}"
    if access.auth == "acr":
        return "log in with `az login` (or a managed identity); pushing needs the AcrPush role on the registry"
    return f"run `docker login {server}`, or set registry.auth to password (registry.username + {access.password_env})"


def _basic(username: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _basic_of(credentials: RegistryCredentials) -> str:
    return _basic(credentials.username, credentials.secret.get_secret_value())


def _next_link(header: str | None) -> str | None:
    match = _NEXT_LINK.search(header or "")
    return match[1] if match else None


def _error_text(response: httpx.Response) -> str:
    """The registry's own error code and message (distribution's `{"errors": [...]}`), else the reason."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        errors = []
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        return f"{first.get('code', '')} {first.get('message', '')}".strip()
    return response.reason_phrase or str(response.status_code)
