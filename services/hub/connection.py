"""How to reach the hub: the connection, HTTP settings, listings, HEAD requests and error translation.

The token goes only to the endpoint's own origin (scheme, host and port); a redirect or a next-page
link elsewhere gets none or is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from services.errors import (
    AccessDeniedError,
    HubResponseError,
    HubUnavailableError,
    NextStep,
    NotFoundError,
    UsageError,
    WorkbenchError,
)

if TYPE_CHECKING:
    import httpx2
    from huggingface_hub import HfApi


DEFAULT_ENDPOINT = "https://huggingface.co"

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
    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    if any(f and f.upper() in {"1", "ON", "YES", "TRUE"} for f in flags):
        return True  # said without importing huggingface_hub (~50 ms of CPU at the app's start)
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE


def check_online(conn: HubConnection) -> None:
    """Raise `HubUnavailableError` unless the hub answers within the connection's timeout."""
    if offline_mode():
        raise offline_error(conn)
    with hub_errors(conn, "the hub"):
        next(pages(conn, f"{conn.url}/api/models", {"limit": 1}))


def pages(conn: HubConnection, url: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
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


def headers_for(conn: HubConnection, url: str) -> dict[str, str]:
    """Request headers for `url`: the token only when `url` is on the hub's own origin."""
    from huggingface_hub.utils import build_hf_headers

    token: str | bool | None = conn.token if same_origin(url, conn.url) else False  # False: no token at all
    return dict(build_hf_headers(token=token))


def head(conn: HubConnection, url: str) -> tuple[httpx2.Response, str]:
    """HEAD a resolve URL, following redirects only within the hub's origin (the token never leaves it).

    Returns the last answer and where to GET the file: a redirect to another origin (a CDN) carries
    the file's metadata itself, as on the Hub.
    """
    from huggingface_hub import get_session
    from huggingface_hub.utils import hf_raise_for_status

    for _ in range(MAX_REDIRECTS):
        headers = {**headers_for(conn, url), "Accept-Encoding": "identity"}
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


@contextmanager
def hub_errors(conn: HubConnection, what: str, *, repo_id: str | None = None) -> Iterator[None]:
    """Translate huggingface_hub and HTTP errors into workbench errors with a next step."""
    import httpx2
    from huggingface_hub import errors as hf

    try:
        yield
    except hf.GatedRepoError:
        raise gated_error(conn, repo_id or what) from None
    except hf.RepositoryNotFoundError:
        raise NotFoundError(
            f"{what} not found on {conn.url}",
            hint="check the id, or set HF_TOKEN if it is private",
            step=NextStep("models.search"),
        ) from None
    except hf.RevisionNotFoundError:
        raise NotFoundError(f"{what}: revision not found", hint="check the branch, tag or commit") from None
    except hf.RemoteEntryNotFoundError as exc:
        raise NotFoundError(f"{what}: file not found ({exc.response.url.path})") from None
    except hf.HFValidationError as exc:
        raise UsageError(f"{what}: {str(exc).splitlines()[0]}") from None
    except (hf.OfflineModeIsEnabled, httpx2.TransportError) as exc:
        raise offline_error(conn, exc) from None
    except hf.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        detail = (exc.server_message or "no details from the server").splitlines()[0]
        raise WorkbenchError(f"{what} failed: hub answered HTTP {status}: {detail}") from None
    except OSError as exc:  # writing the cache: disk full, permissions, a file where a folder must be
        raise WorkbenchError(f"{what}: {exc.strerror or exc} ({exc.filename or 'the cache'})") from None


def gated_error(conn: HubConnection, repo_id: str) -> AccessDeniedError:
    """The error for a gated model the token may not fetch, saying how to get access."""
    return AccessDeniedError(
        f"{repo_id} is gated and the configured token has no access",
        hint=f"accept the licence at {conn.url}/{repo_id} and set HF_TOKEN (or `hf auth login`)",
    )


def offline_error(conn: HubConnection, exc: Exception | None = None) -> HubUnavailableError:
    """The error for a hub that is switched off (`HF_HUB_OFFLINE`) or did not answer (`exc`)."""
    if exc is None:
        return HubUnavailableError("hub offline: HF_HUB_OFFLINE is set; local models still work")
    reason = type(exc).__name__
    return HubUnavailableError(
        f"hub unreachable: {conn.url} ({reason}, timeout {conn.timeout:g} s); local models still work",
        hint="check the network or hub.endpoint",
    )
