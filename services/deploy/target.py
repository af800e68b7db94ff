"""What a deploy target is: where its engine is, how to reach it, and how each app runs there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from services.errors import ConfigError

ENVIRONMENTS = ("dev", "staging", "prod")


@dataclass(frozen=True)
class AppSpec:
    """How one app runs on a target."""

    name: str
    port: int
    """Public port the target's proxy listens on for this app."""
    artifacts: dict[str, str] = field(default_factory=dict)
    """Mount name to artifact reference, e.g. {"adapter": "chatbot-adapter:prod"}; mounted read-only
    at /artifacts/<mount name>."""
    env: dict[str, str] = field(default_factory=dict)
    """Plain (non-secret) environment of the container."""
    api_keys_env: str | None = None
    """Variable on the deploying machine holding the app's API keys (one per line or comma-separated);
    they reach the container as a read-only file, never its environment or argv."""
    api_keys_file_env: str = "API_KEYS_FILE"
    """Variable that tells the app where that file is (e.g. CHATBOT_API_KEYS_FILE)."""
    gpus: int | None = None
    """GPUs to request (-1: all); None: no GPU."""
    memory: str | None = None
    """Memory limit, e.g. "8g"."""
    cpus: float | None = None
    """CPU limit, e.g. 2.0."""
    suite: Path | None = None
    """Prompt suite that must pass before the deploy goes on (the gate)."""
    container_port: int = 8000
    ready_timeout_s: float = 120.0


@dataclass(frozen=True)
class Target:
    """A deployment server."""

    name: str
    docker_host: str
    """`ssh://user@host[:port]` or `unix:///path/to/docker.sock`."""
    environment: str
    apps: dict[str, AppSpec] = field(default_factory=dict)
    identity_file: Path | None = None
    known_hosts: Path | None = None
    """known_hosts file to trust; None: the user's and the system's (an unknown host is always refused)."""
    keep: int = 3
    """Old versions kept stopped per app for instant rollback."""
    proxy_image: str = "nginx:1.27-alpine"
    registry: str | None = None

    @property
    def is_ssh(self) -> bool:
        return self.docker_host.startswith("ssh://")

    def app(self, name: str) -> AppSpec:
        if name not in self.apps:
            known = ", ".join(self.apps) or "none"
            raise ConfigError(
                f"target {self.name} has no app {name!r} (configured: {known})",
                hint=f"add [targets.{self.name}.apps.{name}] with at least `port` to workbench.toml",
            )
        return self.apps[name]


@dataclass(frozen=True)
class SshAddress:
    user: str | None
    host: str
    port: int


def ssh_address(docker_host: str) -> SshAddress:
    """The parts of `ssh://user@host[:port]`; ConfigError on anything else."""
    parts = urlsplit(docker_host)
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(f"{docker_host!r} is not an ssh://user@host[:port] address")
    return SshAddress(parts.username, parts.hostname, parts.port or 22)
