"""The reverse proxy on a target: one nginx container publishing every app's port.

Traffic moves to a new version by rewriting the app's upstream and `nginx -s reload`: nginx starts
new workers on the new upstream and lets the old ones finish their requests, so nothing in flight
fails. The config is checked with `nginx -t` first; a bad one never replaces a good one.

With TLS configured (`Target.tls`) every app's port speaks HTTPS only (TLS 1.2 and 1.3, HSTS); plain HTTP
on it gets a 301 to https, or nginx's refusal with `plain_http = "off"`. The certificate and key reach the
proxy's TLS volume as files of root's (the key 0400: nginx's master process reads it, nothing else does);
a deploy that finds another certificate there writes the new pair, and its reload serves it.

Routes survive the proxy: its conf.d is a volume (`wb-proxy-routes`), and whenever the proxy is (re)created
(its ports or TLS changed, or it is gone) every configured app's route is rewritten from the target's
settings, to the container it served before (or, when that one is gone, the app's newest running
container by its labels). Recreating the proxy for one app never drops another app's route.
"""

from __future__ import annotations

import contextlib
import io
import re
import ssl
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.deploy import volumes
from services.deploy.target import Target, Tls, check_routes, upstream_name, validate_app_name
from services.errors import ConfigError, DeployFailedError

if TYPE_CHECKING:
    from docker import DockerClient

NETWORK = "wb-net"
PROXY = "wb-proxy"
CONF_DIR = "/etc/nginx/conf.d"
ROUTES_VOLUME = "wb-proxy-routes"
ROLE = "workbench.role"
HSTS = "max-age=31536000"
"""Strict-Transport-Security on every HTTPS answer: browsers use https only, for a year."""
TLS_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
"""TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 suites are all of that already)."""
UPSTREAM_SERVER = re.compile(r"^\s*server\s+([A-Za-z0-9_.-]+):\d+;", re.MULTILINE)


def site_config(app: str, port: int, upstream: str, container_port: int, tls: Tls | None = None) -> str:
    """nginx config for one app: streaming-friendly (no buffering, long reads), keep-alive upstream; with
    `tls` HTTPS only (TLS 1.2+, HSTS) and plain HTTP on the same port redirected (301) or refused."""
    name = upstream_name(validate_app_name(app))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", upstream):
        raise ValueError(f"{upstream!r} is not a container name")
    if tls is None:
        listen = f"listen {port} default_server;"
    else:
        where = "" if port == 443 else f":{port}"
        redirect = f"error_page 497 =301 https://$host{where}$request_uri;" if tls.plain_http == "redirect" else ""
        listen = f"""listen {port} ssl default_server;
    ssl_certificate {volumes.TLS_DEST}/{volumes.TLS_CERT};
    ssl_certificate_key {volumes.TLS_DEST}/{volumes.TLS_KEY};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers {TLS_CIPHERS};
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:wb_tls:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;
    add_header Strict-Transport-Security "{HSTS}" always;
    {redirect}""".rstrip()
    return f"""# written by LLM Workbench: app {app}
upstream {name} {{
    server {upstream}:{container_port};
    keepalive 16;
}}
server {{
    {listen}
    client_max_body_size 8m;
    location / {{
        proxy_pass http://{name};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_buffering off;
        proxy_read_timeout 300s;
    }}
}}
"""


def no_route(app: str, why: str) -> str:
    """The config file of an app the proxy does not route (a comment: nginx reads nothing from it)."""
    return f"# written by LLM Workbench: app {app}: no route ({why})\n"


def ensure_network(client: DockerClient) -> None:
    """The internal network app containers and the proxy share (made once)."""
    if not client.networks.list(names=[NETWORK]):
        client.networks.create(NETWORK, driver="bridge", labels={ROLE: "network"})


def tls_files(target: Target) -> tuple[bytes, bytes] | None:
    """The target's certificate and key (read on this machine, checked to be a PEM pair nginx can load),
    or None without TLS; ConfigError naming the files (never their contents) otherwise."""
    if target.tls is None:
        return None
    cert, key = target.tls.cert, target.tls.key
    where = f"targets.{target.name}: tls_cert {cert} / tls_key {key}"
    try:
        data = cert.read_bytes(), key.read_bytes()
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=lambda: b"")
    except OSError as exc:
        reason = exc.strerror or (exc.args[-1] if exc.args else type(exc).__name__)
        raise ConfigError(
            f"{where}: not a usable certificate and key ({reason})",
            hint="point tls_cert at a PEM certificate chain and tls_key at its unencrypted PEM private key",
        ) from None
    return data


def ensure_proxy(client: DockerClient, target: Target) -> Any:
    """The running proxy container publishing every app port of the target: recreated when its ports or
    TLS change (every configured app's route rewritten, see the module's doc), its certificate and key
    rewritten when they changed (served from the next reload)."""
    from docker.errors import NotFound

    check_routes(target.name, {app: spec.port for app, spec in target.apps.items()})
    pair = tls_files(target)
    ports = sorted(spec.port for spec in target.apps.values())
    labels = {ROLE: "proxy", "workbench.ports": ",".join(map(str, ports)), "workbench.tls": "on" if pair else "off"}
    try:
        current: Any = client.containers.get(PROXY)
    except NotFound:
        current = None
    if current is not None and all(current.labels.get(k) == v for k, v in labels.items()):
        if pair is not None and _read(current, f"{volumes.TLS_DEST}/{volumes.TLS_CERT}") != pair[0]:
            volumes.write_tls(client, target.proxy_image, *pair)
        if current.status != "running":
            current.start()
        return current
    kept = routes(current) if current is not None else {}
    if current is not None:
        current.remove(force=True)  # the published ports or TLS changed
    _pull(client, target.proxy_image)
    if pair is not None:
        volumes.write_tls(client, target.proxy_image, *pair)
    else:
        volumes.remove_tls(client)  # TLS turned off: no key stays behind on the target
    created = _create(client, target, ports, labels, tls=pair is not None)
    try:
        if current is None:
            kept = routes(created)  # what the routes volume kept (the proxy was removed)
        _rebuild(client, created, target, kept)
        created.start()
        _check_started(created)
    except BaseException:
        with contextlib.suppress(Exception):
            created.remove(force=True)
        raise
    return created


def route(proxy: Any, app: str, port: int, upstream: str, container_port: int, tls: Tls | None = None) -> None:
    """Send app traffic to container `upstream`: write its config, check it and reload gracefully (one exec)."""
    name = f"wb-{app}.conf"
    proxy.put_archive(CONF_DIR, _tar({name: site_config(app, port, upstream, container_port, tls)}))
    done = proxy.exec_run(["sh", "-c", "nginx -t -q && nginx -s reload"])
    if done.exit_code != 0:
        raise DeployFailedError(
            f"the proxy refused the new config for {app}: {done.output.decode(errors='replace')[-300:]}",
            hint="the old config keeps serving; check `docker logs wb-proxy` on the target",
        )


def routed_to(proxy: Any, app: str) -> str | None:
    """The container the proxy sends `app` to now, or None (read from its config file)."""
    text = _read(proxy, f"{CONF_DIR}/wb-{app}.conf")
    found = UPSTREAM_SERVER.search(text.decode(errors="replace")) if text else None
    return found.group(1) if found else None


def routes(proxy: Any) -> dict[str, str]:
    """App name to the container the proxy's config files route it to (all of them, one archive read)."""
    from docker.errors import NotFound

    try:
        stream, _ = proxy.get_archive(CONF_DIR)
    except NotFound:
        return {}
    found: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if not (member.isfile() and name.startswith("wb-") and name.endswith(".conf")):
                continue
            data = tar.extractfile(member)
            server = UPSTREAM_SERVER.search(data.read().decode(errors="replace")) if data else None
            if server:
                found[name.removeprefix("wb-").removesuffix(".conf")] = server.group(1)
    return found


def _create(client: DockerClient, target: Target, ports: list[int], labels: dict[str, str], *, tls: bool) -> Any:
    """The proxy container, created (not started): routes on their volume (never the image's own conf.d
    files), the TLS volume read-only."""
    from docker.types import Mount

    if not client.volumes.list(filters={"name": f"^{ROUTES_VOLUME}$"}):
        client.volumes.create(ROUTES_VOLUME, labels={ROLE: "proxy-routes"})
    mounts = [Mount(CONF_DIR, ROUTES_VOLUME, type="volume", no_copy=True)]
    if tls:
        mounts.append(Mount(volumes.TLS_DEST, volumes.TLS_VOLUME, type="volume", read_only=True, no_copy=True))
    return client.containers.create(
        target.proxy_image,
        ["nginx", "-g", "daemon off;"],
        name=PROXY,
        network=NETWORK,
        ports={f"{p}/tcp": p for p in ports},
        mounts=mounts,
        restart_policy={"Name": "unless-stopped"},
        labels=labels,
    )


def _rebuild(client: DockerClient, proxy: Any, target: Target, kept: dict[str, str]) -> None:
    """Write every configured app's route (to the container it had, else its newest running one) and
    blank the routes of apps this target no longer configures."""
    files = {}
    for app, spec in target.apps.items():
        upstream = _live(client, app, kept.get(app))
        files[f"wb-{app}.conf"] = (
            site_config(app, spec.port, upstream, spec.container_port, target.tls)
            if upstream
            else no_route(app, "no running container")
        )
    for app in kept.keys() - target.apps.keys():
        with contextlib.suppress(ValueError):
            files[f"wb-{validate_app_name(app)}.conf"] = no_route(app, f"not configured on target {target.name}")
    proxy.put_archive(CONF_DIR, _tar(files))


def _live(client: DockerClient, app: str, kept: str | None) -> str | None:
    """The container `app` should be routed to: `kept` while it runs, else the app's newest running one."""
    from docker.errors import NotFound

    if kept:
        with contextlib.suppress(NotFound):
            container = client.containers.get(kept)
            if container.status == "running" and container.labels.get("workbench.app") == app:
                return kept
    running = client.containers.list(filters={"label": [f"{ROLE}=app", f"workbench.app={app}"], "status": "running"})
    return str(max(running, key=lambda c: c.attrs.get("Created", "")).name) if running else None


def _check_started(proxy: Any) -> None:
    """DeployFailedError (with nginx's words) when the new proxy did not come up with its config."""
    from docker.errors import APIError

    try:
        done = proxy.exec_run(["nginx", "-t", "-q"])
        code, said = done.exit_code, (done.output or b"").decode(errors="replace")[-300:]
    except APIError as exc:  # it stopped already
        code, said = 1, str(exc.explanation or exc)[-300:]
    proxy.reload()
    if proxy.status != "running" or code != 0:
        logs = proxy.logs(tail=20).decode(errors="replace")
        raise DeployFailedError(
            f"the proxy did not start with its config: {said}",
            hint="check `docker logs wb-proxy` on the target",
            logs=logs,
        )


def _pull(client: DockerClient, image: str) -> None:
    from docker.errors import ImageNotFound

    try:
        client.images.get(image)
    except ImageNotFound:
        client.images.pull(image)


def _read(container: Any, path: str) -> bytes | None:
    """The bytes of file `path` in `container`, or None when it has none."""
    from docker.errors import NotFound

    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(Path(path).name)
        return member.read() if member else None


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
