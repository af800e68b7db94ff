"""What the fake ARM holds and answers: requests, resource groups, deployments and ARM errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .evaluator import Scope

Answer = tuple[int, dict[str, str], Any]
"""An answer to a request: status, headers and a JSON-able body (None for no body)."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received. The Authorization header's value is never kept."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorized: bool


@dataclass
class Planned:
    """A template resource with its name, id and (best-effort) evaluated body."""

    id: str
    type: str
    name: str
    body: dict[str, Any]


@dataclass
class Group:
    name: str
    location: str
    tags: dict[str, str]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Deployed resources by lower-cased id: their evaluated bodies."""


@dataclass
class Deployment:
    group: str
    name: str
    template: dict[str, Any]
    scope: Scope
    planned: list[Planned]
    failures: dict[str, tuple[str, str]]
    started: str
    ticks: int = 0
    state: str = "Running"
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


class ArmResponseError(Exception):
    """An ARM error response."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message, **extra}}
