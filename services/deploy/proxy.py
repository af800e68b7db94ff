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
settings, to the containers it served before (or, when none of them runs, the app's newest running
container by its labels). Recreating the proxy for one app never drops another app's route.

An app's upstream lists every replica in rotation: containers on the proxy's host by name on its network,
replicas on the target's other hosts by host address and published port. A replica that refuses or drops a
connection, times out or answers 502/503 is out of rotation for `FAIL_TIMEOUT_S` (state shared by nginx's
workers) and the request is passed to another one. POST is retried too: the apps' POST endpoints (chat
completions, classify) change nothing on the server, so a second try costs only compute; a streamed answer
that already sent bytes is never retried. Idle connections to replicas are closed before the apps close them
(`UPSTREAM_IDLE_S`), so a request never meets a connection that is going away. The `# replica` comments in an
app's file name each replica's container and engine, so a deploy knows what serves.
"""

from __future__ import annotations

import contextlib
import io
import ssl
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.deploy import volumes
from services.deploy.target import Target, Tls, check_routes, upstream_name, validate_app_name
from services.deploy.upstream import (
    ACCESS_LOG,
    CONNECT_TIMEOUT_S,
    FAIL_TIMEOUT_S,
    NEXT_UPSTREAM_TRIES,
    UPSTREAM_IDLE_S,
    Replica,
    as_replicas,
    local_replica,
    parse_replicas,
)
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


def site_config(
    app: str, port: int, upstream: str | Sequence[Replica], container_port: int, tls: Tls | None = None
) -> str:
    """nginx config for one app: streaming-friendly (no buffering, long reads), keep-alive upstream over every
    replica (`upstream`: the replicas, or one container's name), failed ones ejected and their requests retried
    on another (see the module's doc); with `tls` HTTPS only (TLS 1.2+, HSTS) and plain HTTP on the same port
    redirected (301) or refused."""
    name = upstream_name(validate_app_name(app))
    replicas = as_replicas(upstream, container_port)
    servers = "\n".join(f"    server {r.server} max_fails=1 fail_timeout={FAIL_TIMEOUT_S}s;" for r in replicas)
    notes = "".join(f"# replica {r.container} {r.engine} {r.server}\n" for r in replicas)
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
{notes}log_format {name}_log '{ACCESS_LOG}';
upstream {name} {{
    zone {name} 64k;
{servers}
    keepalive 16;
    keepalive_timeout {UPSTREAM_IDLE_S}s;
}}
server {{
    {listen}
    client_max_body_size 8m;
    access_log /var/log/nginx/access.log {name}_log;
    location / {{
        proxy_pass http://{name};
        proxy_connect_timeout {CONNECT_TIMEOUT_S}s;
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_next_upstream_tries {NEXT_UPSTREAM_TRIES};
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


def route(
    proxy: Any,
    app: str,
    port: int,
    upstream: str | Sequence[Replica],
    container_port: int,
    tls: Tls | None = None,
    *,
    repair: Callable[[], None] | None = None,
) -> None:
    """Send app traffic to `upstream` (its replicas, or one container): write its config, check it and reload
    gracefully (one exec). When nginx cannot resolve a container another app's route names (it is gone),
    `repair` (e.g. `heal`) rewrites the routes and the reload is tried once more."""
    files = {f"wb-{app}.conf": site_config(app, port, upstream, container_port, tls)}
    proxy.put_archive(CONF_DIR, files_tar(files))
    done = proxy.exec_run(["sh", "-c", "nginx -t -q && nginx -s reload"])
    if done.exit_code != 0 and repair is not None and b"host not found in upstream" in (done.output or b""):
        repair()
        proxy.put_archive(CONF_DIR, files_tar(files))
        done = proxy.exec_run(["sh", "-c", "nginx -t -q && nginx -s reload"])
    if done.exit_code != 0:
        raise DeployFailedError(
            f"the proxy refused the new config for {app}: {done.output.decode(errors='replace')[-300:]}",
            hint="the old config keeps serving; check `docker logs wb-proxy` on the target",
        )


def heal(client: DockerClient, proxy: Any, target: Target) -> None:
    """Rewrite every app's route without the containers on the proxy's host that no longer run (nginx refuses
    a config naming a container it cannot resolve, which would block every other app's deploy)."""
    _rebuild(client, proxy, target, routes(proxy))


def routed_to(proxy: Any, app: str) -> str | None:
    """The container the proxy sends `app` to now (its first replica), or None (read from its config file)."""
    replicas = replicas_of(proxy, app)
    return replicas[0].container if replicas else None


def replicas_of(proxy: Any, app: str) -> list[Replica]:
    """The replicas the proxy sends `app` to now (read from its config file); none when it has no route."""
    text = _read(proxy, f"{CONF_DIR}/wb-{app}.conf")
    return parse_replicas(text.decode(errors="replace")) if text else []


def routes(proxy: Any) -> dict[str, list[Replica]]:
    """App name to the replicas the proxy's config files route it to (all of them, one archive read)."""
    from docker.errors import NotFound

    try:
        stream, _ = proxy.get_archive(CONF_DIR)
    except NotFound:
        return {}
    found: dict[str, list[Replica]] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if not (member.isfile() and name.startswith("wb-") and name.endswith(".conf")):
                continue
            data = tar.extractfile(member)
            replicas = parse_replicas(data.read().decode(errors="replace")) if data else []
            if replicas:
                found[name.removeprefix("wb-").removesuffix(".conf")] = replicas
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


def _rebuild(client: DockerClient, proxy: Any, target: Target, kept: dict[str, list[Replica]]) -> None:
    """Write every configured app's route (to the replicas it had, else its newest running container) and
    blank the routes of apps this target no longer configures."""
    files = {}
    for app, spec in target.apps.items():
        upstream = _live(client, target, app, kept.get(app, []), spec.container_port)
        files[f"wb-{app}.conf"] = (
            site_config(app, spec.port, upstream, spec.container_port, target.tls)
            if upstream
            else no_route(app, "no running container")
        )
    for app in kept.keys() - target.apps.keys():
        with contextlib.suppress(ValueError):
            files[f"wb-{validate_app_name(app)}.conf"] = no_route(app, f"not configured on target {target.name}")
    proxy.put_archive(CONF_DIR, files_tar(files))


def _live(client: DockerClient, target: Target, app: str, kept: list[Replica], container_port: int) -> list[Replica]:
    """The replicas `app` should be routed to: the `kept` ones on the proxy's host that still run and every kept
    one on another host (the proxy ejects one that is gone), else the app's newest running container here."""
    from docker.errors import NotFound

    live = []
    for replica in kept:
        if replica.engine not in ("", target.docker_host):
            live.append(replica)
            continue
        with contextlib.suppress(NotFound):
            container = client.containers.get(replica.container)
            if container.status == "running" and container.labels.get("workbench.app") == app:
                live.append(replica)
    if live:
        return live
    running = client.containers.list(filters={"label": [f"{ROLE}=app", f"workbench.app={app}"], "status": "running"})
    if not running:
        return []
    newest = str(max(running, key=lambda c: c.attrs.get("Created", "")).name)
    return [local_replica(newest, target.docker_host, container_port)]


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


def files_tar(files: dict[str, str]) -> bytes:
    """Text files (path: content, mode 0644) as the tar archive `put_archive` takes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
