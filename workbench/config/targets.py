"""Deploy targets: each target's host, proxy, TLS and apps, checked together when settings load."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from workbench.config.section import Section


class TargetAppSettings(Section):
    port: int | None = Field(default=None, gt=0, lt=65536)
    """Public port the target's proxy serves this app on. Unset: the target's `app_port`."""

    artifacts: dict[str, str] = Field(default_factory=dict)
    """Artifacts the app mounts read-only at `/artifacts/<mount>`: mount to `NAME:LABEL` or `NAME@VERSION`."""

    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment of the app's container (never secrets), e.g. `CHATBOT_ADAPTER_PATH`."""

    api_keys_env: str | None = None
    """Variable on the deploying machine holding the app's API keys (comma-separated); they reach the
    container as a read-only file, never its environment or argv."""

    api_keys_file_env: str = "API_KEYS_FILE"
    """Variable telling the app where that file is, e.g. `CHATBOT_API_KEYS_FILE`."""

    gpus: int | None = None
    """GPUs the container gets (-1: all). Unset: none."""

    memory: str | None = None
    """Memory limit, e.g. `8g`."""

    cpus: float | None = Field(default=None, gt=0)
    """CPU limit, e.g. `2`."""

    suite: Path | None = None
    """Prompt suite that must pass before a deploy goes on (the gate)."""

    ready_timeout_s: float = Field(default=120.0, gt=0)
    """Seconds the new container gets to answer `/readyz` with 200."""

    drain_timeout_s: float | None = Field(default=None, ge=0)
    """Seconds a replaced container gets to finish its in-flight requests (streamed answers) before it is
    stopped. Unset: the app's request timeout from its `env` (`*_GENERATION_TIMEOUT_S` or
    `*_REQUEST_TIMEOUT_S`), else 60."""

    keep_previous_warm: bool = False
    """Keep the replaced release's containers running, out of rotation, so a rollback is a proxy switch
    (no model reload). With `replicas = N` all N stay warm, each on its host (a rollback moves all traffic
    back at full capacity): each host holds two versions' resident memory (and GPU memory) until the next
    deploy. Only the last replaced release is kept warm."""

    replicas: int = Field(default=1, ge=1)
    """Containers serving the app, spread round robin over the target's hosts (the first on the proxy's host);
    the proxy balances over every ready one and a deploy replaces them one at a time, new before old."""


class TargetSettings(Section):
    host: str | None = None
    """Deployment VM's address: public DNS name, else public IP, else private IP. Set this or `hosts`."""

    hosts: tuple[str, ...] = ()
    """Several deployment VMs (addresses as for `host`), each a Docker engine over SSH with this target's
    `user`, `ssh_port`, `identity_file` and `known_hosts`. The first runs the proxy; apps' `replicas` are
    spread over all of them round robin. Set this or `host`."""

    user: str = "azureuser"
    """SSH user on the deployment VM (key login only)."""

    @field_validator("host", "user")
    @classmethod
    def _ssh_name(cls, value: str | None, info: Any) -> str | None:
        """A plain host or login name: never something ssh would read as an option."""
        from services.deploy.target import validate_ssh_host, validate_ssh_user

        if value is None:
            return None
        return validate_ssh_host(value) if info.field_name == "host" else validate_ssh_user(value)

    @field_validator("hosts")
    @classmethod
    def _ssh_hosts(cls, value: list[str]) -> list[str]:
        """Plain host names or addresses, none twice (one engine would get two replicas' share)."""
        from services.deploy.target import validate_ssh_host

        seen: set[str] = set()
        for host in value:
            validate_ssh_host(host)
            if host.lower().rstrip(".") in seen:
                raise ValueError(f"host {host!r} is listed twice")
            seen.add(host.lower().rstrip("."))
        return value

    ssh_port: int = Field(default=22, gt=0, lt=65536)
    """SSH port of the deployment VM."""

    app_port: int | None = Field(default=None, gt=0, lt=65536)
    """Port the apps' reverse proxy listens on (an app's own `port` wins). Unset: 443 with `tls_cert`, else 80."""

    tls_cert: Path | None = None
    """Certificate (PEM chain, server certificate first) the proxy serves HTTPS with. Unset: plain HTTP."""

    tls_key: Path | None = None
    """Private key of `tls_cert` (PEM), on this machine; it reaches the target as a file only the proxy reads."""

    plain_http: Literal["redirect", "off"] = "redirect"
    """Plain HTTP on an app's TLS port: `redirect` (301 to https) or `off` (refused). Only with `tls_cert`."""

    registry: str | None = None
    """Registry login server this target pulls images from (its environment's registry)."""

    docker_host: str | None = None
    """Docker engine: `ssh://user@host[:port]` or `unix:///path`. Unset: `ssh://<user>@<host>:<ssh_port>`."""

    identity_file: Path | None = None
    """SSH private key for the target. Unset: your ssh-agent and default keys."""

    known_hosts: Path | None = None
    """known_hosts file for the target. Unset: yours and the system's. An unknown host key is always refused."""

    keep: int = Field(default=3, ge=1)
    """Old versions kept (stopped) per app for instant rollback."""

    proxy_image: str = "nginx:1.27-alpine"
    """Reverse proxy image run on the target in front of the apps."""

    apps: dict[str, TargetAppSettings] = Field(default_factory=dict)
    """How each app runs on this target."""

    @property
    def all_hosts(self) -> list[str]:
        """The target's hosts, the proxy's first (`hosts`, else `host`)."""
        return list(self.hosts) or ([self.host] if self.host else [])

    @property
    def default_port(self) -> int:
        """The port an app without its own `port` is served on."""
        from services.deploy.target import PLAIN_HTTP_PORT, TLS_PORT

        return self.app_port or (TLS_PORT if self.tls_cert is not None else PLAIN_HTTP_PORT)


class TargetsSettings(Section):
    dev: TargetSettings | None = None
    """The dev environment's deployment server (written by `workbench infra up --env dev`)."""

    staging: TargetSettings | None = None
    """A staging deployment server (deploys to prod can require staging first: `--target staging --target prod`)."""

    prod: TargetSettings | None = None
    """The prod environment's deployment server (written by `workbench infra up --env prod`). `-dirty` versions
    are refused here."""

    @model_validator(mode="after")
    def _tls_and_routes(self) -> TargetsSettings:
        """Per target: cert and key come together, and every app gets a port and a proxy upstream of its own
        (a ConfigError naming both apps otherwise: one app never silently takes another's traffic)."""
        for name in type(self).model_fields:
            target: TargetSettings | None = getattr(self, name)
            if target is None:
                continue
            from services.deploy.target import TLS_PORT, check_routes  # only when a target is set: off the start path
            from services.errors import ConfigError

            _check_hosts(name, target)
            if (target.tls_cert is None) != (target.tls_key is None):
                raise ConfigError(f"targets.{name}: set both tls_cert and tls_key, or neither")
            ports = {app: a.port or target.default_port for app, a in target.apps.items()}
            plain_on_tls = [f"app {app}" for app, port in ports.items() if port == TLS_PORT]
            if target.tls_cert is None and (target.app_port == TLS_PORT or plain_on_tls):
                where = ", ".join(plain_on_tls) or "app_port"
                raise ConfigError(
                    f"targets.{name}: {where} on port {TLS_PORT} without a certificate would serve plain HTTP there",
                    hint=f"set targets.{name}.tls_cert and tls_key (the infra opens only {TLS_PORT}), or another port",
                )
            check_routes(name, ports)
        return self


def _check_hosts(name: str, target: TargetSettings) -> None:
    """`host` or `hosts`, not both and not neither; `docker_host` names one engine, so only with one host."""
    from services.errors import ConfigError

    if target.host is not None and target.hosts:
        raise ConfigError(
            f"targets.{name}: set `host` or `hosts`, not both",
            hint=f"list every host in targets.{name}.hosts, the proxy's first",
        )
    if not target.all_hosts and target.docker_host is None:
        raise ConfigError(f"targets.{name}: no `host`", hint=f'set targets.{name}.host = "ADDRESS" (or `hosts`)')
    if len(target.hosts) > 1 and target.docker_host is not None:
        raise ConfigError(
            f"targets.{name}: `docker_host` names one engine but `hosts` lists {len(target.hosts)}",
            hint="drop docker_host: each host is reached as ssh://<user>@<host>:<ssh_port>",
        )
