"""A credential that hands out a fixed bearer token: what the fake ARM expects."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken

from .server import DEFAULT_TOKEN


class StaticCredential:
    """A TokenCredential with a fixed token; counts how often it was asked."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "StaticCredential(<token hidden>)"
