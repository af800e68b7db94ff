"""What a deploy target is: where its engine is, how to reach it, and how each app runs there."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from services.errors import ConfigError

ENVIRONMENTS = ("dev", "staging", "prod")
HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
SSH_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PLAIN_HTTP_PORT = 80
TLS_PORT = 443
PlainHttp = Literal["redirect", "off"]
DEFAULT_DRAIN_S = 60.0
"""Drain timeout of an app whose request timeout is not known."""
REQUEST_TIMEOUT_ENV = re.compile(r"(^|_)(GENERATION|REQUEST)_TIMEOUT_S$")


def request_timeout(env: Mapping[str, str]) -> float | None:
    """The longest request (generation) timeout the app's environment sets, e.g. CHATBOT_GENERATION_TIMEOUT_S;
    None when it sets none (or none that is a positive number)."""
    found = []
    for name, value in env.items():
        if REQUEST_TIMEOUT_ENV.search(name.upper()):
            try:
                seconds = float(value)
            except ValueError:
                continue
            if seconds > 0:
                found.append(seconds)
    return max(found, default=None)


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
    drain_timeout_s: float | None = None
    """Seconds the replaced container gets to finish its in-flight requests (a streamed answer) before it is
    stopped; None: the app's request timeout when its env sets one (`*_GENERATION_TIMEOUT_S` or
    `*_REQUEST_TIMEOUT_S`), else 60 s."""
    keep_previous_warm: bool = False
    """Keep the replaced release's containers running (out of rotation) so a rollback is a proxy switch; with
    several replicas every one of them (blue-green: the rollback moves all traffic back at full capacity), so
    each host holds two versions' resident memory until the next deploy replaces them."""
    replicas: int = 1
    """Containers serving the app, spread round robin over the target's hosts (the first on the proxy's)."""

    @property
    def drain_timeout(self) -> float:
        """The drain timeout in effect (see `drain_timeout_s`)."""
        if self.drain_timeout_s is not None:
            return self.drain_timeout_s
        return request_timeout(self.env) or DEFAULT_DRAIN_S


@dataclass(frozen=True)
class Tls:
    """TLS at the target's proxy: certificate and key files on the deploying machine (PEM). The deploy copies
    them to the target as a secret only the proxy reads; plain HTTP on an app's port is redirected or refused."""

    cert: Path
    """Certificate chain (server certificate first)."""
    key: Path
    """Its private key (never printed, never in an image, a label or argv)."""
    plain_http: PlainHttp = "redirect"
    """Plain HTTP on an app's TLS port: `redirect` (301 to https) or `off` (refused)."""


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
    tls: Tls | None = None
    """TLS at the proxy; None: plain HTTP."""
    hosts: tuple[str, ...] = ()
    """Every Docker engine of the target (`ssh://...`), the proxy's (`docker_host`) first; empty: `docker_host`
    alone. An app's replicas are spread over them round robin."""

    @property
    def is_ssh(self) -> bool:
        return self.docker_host.startswith("ssh://")

    @property
    def engines(self) -> tuple[str, ...]:
        """The target's engines, the proxy's first."""
        return self.hosts or (self.docker_host,)

    def on(self, engine: str) -> Target:
        """This target as seen on one of its engines (its SSH settings, that engine as `docker_host`)."""
        return replace(self, docker_host=engine, hosts=())

    def address(self, engine: str) -> str:
        """The address the proxy reaches engine `engine`'s published ports at (the SSH host, checked)."""
        if not engine.startswith("ssh://"):
            raise ConfigError(
                f"target {self.name}: {engine} is not reached over SSH, so the proxy has no address for it",
                hint="give every host of a target with several hosts as an SSH host",
            )
        return ssh_address(engine).host.strip("[]")

    def app(self, name: str) -> AppSpec:
        if name not in self.apps:
            known = ", ".join(self.apps) or "none"
            raise ConfigError(
                f"target {self.name} has no app {name!r} (configured: {known})",
                hint=f"add [targets.{self.name}.apps.{name}] with at least `port` to workbench.toml",
            )
        return self.apps[name]


def placement(target: Target, replicas: int) -> list[str]:
    """The engine of each of `replicas` replicas: round robin over the target's engines, the proxy's first."""
    engines = target.engines
    return [engines[i % len(engines)] for i in range(replicas)]


def upstream_name(app: str) -> str:
    """The nginx upstream of `app` (`wb_` and the name, every character but letters, digits and `_` as `_`)."""
    return "wb_" + re.sub(r"[^A-Za-z0-9_]", "_", app)


def validate_app_name(app: str) -> str:
    """`app` when it is a plain name (letters, digits, `_`, `.`, `-`; not first): it becomes part of the proxy's
    config and of container names, so nothing else may reach them; ValueError otherwise."""
    if not APP_NAME.match(app):
        raise ValueError(f"{app!r} is not a valid app name (letters, digits, '_', '.', '-'; at most 63)")
    return app


def check_routes(target: str, ports: Mapping[str, int]) -> None:
    """ConfigError naming both apps when two apps of `target` share a public port or map to one upstream
    (one would silently take the other's traffic); `ports` is app name to public port."""
    by_port: dict[int, str] = {}
    by_upstream: dict[str, str] = {}
    for app, port in ports.items():
        try:
            validate_app_name(app)
        except ValueError as exc:
            raise ConfigError(f"targets.{target}.apps: {exc}", hint="rename the app") from None
        if port in by_port:
            raise ConfigError(
                f"targets.{target}: apps {by_port[port]!r} and {app!r} both use port {port}",
                hint=f"give each app its own `port` under [targets.{target}.apps.APP]",
            )
        upstream = upstream_name(app)
        if upstream in by_upstream:
            raise ConfigError(
                f"targets.{target}: apps {by_upstream[upstream]!r} and {app!r} map to one proxy upstream ({upstream})",
                hint="rename one of them (names that differ only in '-', '.' and '_' collide)",
            )
        by_port[port] = app
        by_upstream[upstream] = app


@dataclass(frozen=True)
class SshAddress:
    user: str | None
    host: str
    port: int


def ssh_address(docker_host: str) -> SshAddress:
    """The parts of `ssh://user@host[:port]`, host and user validated; ConfigError on anything else."""
    try:
        parts = urlsplit(docker_host)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{docker_host!r} is not an ssh://user@host[:port] address") from None
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{docker_host!r} is not an ssh://user@host[:port] address")
    try:
        host = validate_ssh_host(parts.hostname)
        user = validate_ssh_user(parts.username) if parts.username is not None else None
    except ValueError as exc:
        raise ConfigError(f"{docker_host!r}: {exc}", hint="write ssh://user@host[:port]") from None
    return SshAddress(user, host, port or 22)


def validate_ssh_host(host: str) -> str:
    """`host` when it is a DNS name or an IP address (IPv6 with or without brackets); ValueError otherwise,
    so nothing ssh would read as an option (`-o...`) or a second argument ever becomes a destination."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        labels = bare.rstrip(".").split(".")
        if len(bare) > 253 or not all(HOST_LABEL.match(label) for label in labels):
            raise ValueError(f"{host!r} is not a valid SSH host (a DNS name or an IP address)") from None
    return host


def validate_ssh_user(user: str) -> str:
    """`user` when it is a plain login name (letters, digits, `_`, `.`, `-`, not first); ValueError otherwise."""
    if not SSH_USER.match(user):
        raise ValueError(f"{user!r} is not a valid SSH user (letters, digits, '_', '.', '-'; not starting with '-')")
    return user
