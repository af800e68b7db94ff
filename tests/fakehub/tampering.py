"""Hostile answers for the trust tests: what a malicious or broken hub or mirror could send."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .repos import HubFile
from .wire import HubResponse


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


def tampered_file(tamper: Tampering, file: HubFile, path: str, method: str) -> HubFile:
    """`file` as the tampering sends it: swapped content, or padding appended to GET bodies."""
    if path in tamper.swapped:
        file = replace(file, source=tamper.swapped[path], size=len(tamper.swapped[path]))
    extra = tamper.padding.get(path, 0) if method == "GET" else 0
    if extra:
        file = replace(file, source=file.read() + b"\0" * extra, size=file.size + extra)
    return file


def tamper_headers(tamper: Tampering, response: HubResponse) -> None:
    """Replace the resolve answer's ETags and headers as the tampering says; empty values are removed."""
    if tamper.etag is not None:
        response.headers["ETag"] = f'"{tamper.etag}"'
        if "X-Linked-Etag" in response.headers:
            response.headers["X-Linked-Etag"] = f'"{tamper.etag}"'
    for name, value in tamper.headers.items():
        response.headers[name] = value
    response.headers = {name: value for name, value in response.headers.items() if value}
