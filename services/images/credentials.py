"""Who may talk to a registry: where it is, how to log in (`RegistryAccess`) and the resolved secret.

Plain values shared by the registry's HTTP client (`services.images.registry`) and the Azure
identity login (`services.images.acr`); neither module needs the other to describe a login.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from services.errors import ConfigError, NextStep

AuthKind = Literal["docker-config", "password", "acr"]


@dataclass(frozen=True)
class RegistryAccess:
    """Where the registry is and how to log in to it; built from settings by the caller."""

    server: str | None
    """Login server, `host[:port]` (e.g. `myacr.azurecr.io`)."""
    auth: AuthKind = "docker-config"
    username: str | None = None
    password_env: str = "WORKBENCH_REGISTRY_PASSWORD"
    plain_http: bool = False
    """Speak plain HTTP to the API (a local test registry; no proxy is used for it either)."""
    docker_config: Path | None = None
    """Folder of Docker's `config.json`; None: `DOCKER_CONFIG`, else `~/.docker`."""
    credential: Any = field(default=None, repr=False, compare=False)
    """An Azure TokenCredential for `acr` instead of DefaultAzureCredential (tests, scripts)."""
    transport: Any = field(default=None, repr=False, compare=False)
    """An httpx transport for ACR's token exchange instead of the network (tests)."""
    environ: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    """Where `password_env` is looked up; None: the process environment."""

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    def require_server(self) -> str:
        if not self.server:
            raise ConfigError(
                "no registry configured (registry.login_server is unset)",
                hint="set [registry] login_server in workbench.toml; deploying the infra writes it",
                step=NextStep.of("infra.up", env="dev"),
            )
        return self.server


@dataclass(frozen=True)
class RegistryCredentials:
    """A user and secret for one registry (the secret never shows in repr, str or messages)."""

    server: str
    username: str
    secret: SecretStr = field(repr=False)
    identity_token: bool = False
    """The secret is an identity (refresh) token, not a password."""
    source: str = ""
    """Where they came from, for messages: `environment VAR`, `Docker config`, `Azure identity`."""
    expires_at: float | None = None
    """Epoch seconds when the secret stops working (ACR refresh tokens); None: not known to expire."""

    def auth_config(self) -> dict[str, str]:
        """The `auth_config` docker-py sends to the engine for a push or pull."""
        if self.identity_token:
            return {"identitytoken": self.secret.get_secret_value(), "serveraddress": self.server}
        return {"username": self.username, "password": self.secret.get_secret_value(), "serveraddress": self.server}

    def expires_within(self, seconds: float) -> bool:
        return self.expires_at is not None and self.expires_at - time.time() < seconds
