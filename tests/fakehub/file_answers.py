"""Answers to `resolve` requests: a file's headers with ETags, byte ranges, and CDN redirects."""

from __future__ import annotations

from .repos import HubFile
from .wire import HubError, HubResponse


def file_response(file: HubFile, sha: str, range_header: str | None) -> HubResponse:
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
        return HubResponse(200, headers, file=file, length=file.size)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
    return HubResponse(206, headers, file=file, start=start, length=end - start)


def redirect_response(file: HubFile, sha: str, location: str) -> HubResponse:
    """The Hub's answer for an LFS file stored on a CDN: a redirect that carries the file's metadata."""
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{file.etag}"',
        "X-Linked-Etag": f'"{file.etag}"',
        "X-Linked-Size": str(file.size),
        "Location": location,
    }
    return HubResponse(302, headers)


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
