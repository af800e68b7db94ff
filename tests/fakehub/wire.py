"""The request and answer shapes passed between the fake hub's HTTP handler and its routes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .repos import HubFile


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
class HubRequest:
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
class HubResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: HubFile | None = None
    start: int = 0
    length: int = 0
    cut_after: int | None = None


class HubError(Exception):
    """An error answer, with the `X-Error-Code` that `huggingface_hub` maps to its exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers

    def response(self) -> HubResponse:
        headers = {"Content-Type": "application/json", "X-Error-Message": self.message, **self.headers}
        if self.code:
            headers["X-Error-Code"] = self.code
        return HubResponse(self.status, headers, json.dumps({"error": self.message}).encode())


def json_response(payload: object) -> HubResponse:
    """A 200 answer carrying `payload` as JSON."""
    return HubResponse(200, {"Content-Type": "application/json"}, json.dumps(payload).encode())
