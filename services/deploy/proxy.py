"""The reverse proxy on a target: one nginx container publishing every app's port.

Traffic moves to a new version by rewriting the app's upstream and `nginx -s reload`: nginx starts
new workers on the new upstream and lets the old ones finish their requests, so nothing in flight
fails. The config is checked with `nginx -t` first; a bad one never replaces a good one.
"""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING, Any

from services.deploy.target import Target
from services.errors import DeployFailedError

if TYPE_CHECKING:
    from docker import DockerClient

NETWORK = "wb-net"
PROXY = "wb-proxy"
CONF_DIR = "/etc/nginx/conf.d"
ROLE = "workbench.role"


def site_config(app: str, port: int, upstream: str, container_port: int) -> str:
    """nginx config for one app: streaming-friendly (no buffering, long reads), keep-alive upstream."""
    return f"""# written by LLM Workbench: app {app}
upstream wb_{app.replace("-", "_")} {{
    server {upstream}:{container_port};
    keepalive 16;
}}
server {{
    listen {port};
    client_max_body_size 8m;
    location / {{
        proxy_pass http://wb_{app.replace("-", "_")};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_buffering off;
        proxy_read_timeout 300s;
    }}
}}
"""


def ensure_network(client: DockerClient) -> None:
    """The internal network app containers and the proxy share (made once)."""
    if not client.networks.list(names=[NETWORK]):
        client.networks.create(NETWORK, driver="bridge", labels={ROLE: "network"})


def ensure_proxy(client: DockerClient, target: Target) -> Any:
    """The running proxy container publishing every app port of the target (recreated when the ports change)."""
    from docker.errors import ImageNotFound, NotFound

    ports = sorted(spec.port for spec in target.apps.values())
    wanted = ",".join(map(str, ports))
    try:
        proxy = client.containers.get(PROXY)
        if proxy.labels.get("workbench.ports") == wanted:
            if proxy.status != "running":
                proxy.start()
            return proxy
        proxy.remove(force=True)  # the set of published ports changed
    except NotFound:
        pass
    try:
        client.images.get(target.proxy_image)
    except ImageNotFound:
        client.images.pull(target.proxy_image)
    return client.containers.run(
        target.proxy_image,
        ["nginx", "-g", "daemon off;"],
        name=PROXY,
        detach=True,
        network=NETWORK,
        ports={f"{p}/tcp": p for p in ports},
        restart_policy={"Name": "unless-stopped"},
        labels={ROLE: "proxy", "workbench.ports": wanted},
    )


def route(proxy: Any, app: str, port: int, upstream: str, container_port: int) -> None:
    """Send app traffic to container `upstream`: write its config, check it and reload gracefully (one exec)."""
    name = f"wb-{app}.conf"
    proxy.put_archive(CONF_DIR, _tar(name, site_config(app, port, upstream, container_port)))
    done = proxy.exec_run(["sh", "-c", "nginx -t -q && nginx -s reload"])
    if done.exit_code != 0:
        raise DeployFailedError(
            f"the proxy refused the new config for {app}: {done.output.decode(errors='replace')[-300:]}",
            hint="the old config keeps serving; check `docker logs wb-proxy` on the target",
        )


def routed_to(proxy: Any, app: str) -> str | None:
    """The container the proxy sends `app` to now, or None (read from its config file)."""
    from docker.errors import NotFound

    try:
        stream, _ = proxy.get_archive(f"{CONF_DIR}/wb-{app}.conf")
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(f"wb-{app}.conf")
        text = member.read().decode() if member else ""
    for line in text.splitlines():
        if line.strip().startswith("server ") and ":" in line:
            return str(line.split()[1].rsplit(":", 1)[0])
    return None


def _tar(name: str, text: str) -> bytes:
    data = text.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
