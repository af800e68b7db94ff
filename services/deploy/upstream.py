"""How the proxy reaches an app's replicas: one `server` line per replica in the app's nginx upstream, and a
`# replica CONTAINER ENGINE SERVER` comment per replica so a deploy can read back what serves."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

UPSTREAM_SERVER = re.compile(r"^\s*server\s+([A-Za-z0-9_.-]+):\d+[;\s]", re.MULTILINE)
REPLICA_LINE = re.compile(r"^# replica ([A-Za-z0-9_.-]+) (\S*) (\S+)$", re.MULTILINE)
SERVER = re.compile(r"^([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")
FAIL_TIMEOUT_S = 10
"""Seconds a replica that failed a request stays out of rotation before nginx tries it again."""
CONNECT_TIMEOUT_S = 1
"""Seconds to connect to a replica: they are on the proxy's network or the hosts' LAN, so a longer wait means
it is gone (a killed container's address answers nothing) and the request moves to another replica."""
NEXT_UPSTREAM_TRIES = 3
UPSTREAM_IDLE_S = 4
"""Seconds the proxy keeps an idle connection to a replica for reuse: less than the apps' own keep-alive (uvicorn's
5 s, as Node's and hypercorn's), so the proxy never sends a request on a connection the app is closing. Such a
request fails, and nginx counts it against a healthy replica: with another replica down, no replica is left in
rotation and every request is refused (502) until `FAIL_TIMEOUT_S` passes."""
ACCESS_LOG = '$msec $request_time $status "$request" upstream=$upstream_addr upstream_status=$upstream_status'
"""Each app's access log line: when it ended, its duration, and every replica it was sent to (a retried
request names them all, e.g. `upstream=10.0.0.5:32771, 172.18.0.3:8000`), so an ejection can be seen."""


@dataclass(frozen=True)
class Replica:
    """One container serving an app, as the proxy reaches it."""

    container: str
    engine: str
    """The engine it runs on (the target's `docker_host` for the proxy's own host; "" when not recorded)."""
    server: str
    """`container:port` on the proxy's network, or `address:port` published on another host."""


def local_replica(container: str, engine: str, container_port: int) -> Replica:
    """A replica on the proxy's host, reached by container name on the proxy's network."""
    return Replica(container, engine, f"{container}:{container_port}")


def remote_replica(container: str, engine: str, address: str, port: int) -> Replica:
    """A replica on another host, reached at `address:port` (its published port)."""
    host = f"[{address}]" if ":" in address else address
    return Replica(container, engine, f"{host}:{port}")


def as_replicas(upstream: str | Sequence[Replica], container_port: int) -> list[Replica]:
    """`upstream` as replicas: a bare container name is one replica on the proxy's network."""
    replicas = [local_replica(upstream, "", container_port)] if isinstance(upstream, str) else list(upstream)
    for replica in replicas:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", replica.container):
            raise ValueError(f"{replica.container!r} is not a container name")
        if not SERVER.match(replica.server) or any(c.isspace() for c in replica.engine):
            raise ValueError(f"{replica.server!r} is not a server address")
    if not replicas:
        raise ValueError("an upstream needs at least one replica")
    return replicas


def parse_replicas(text: str) -> list[Replica]:
    """The replicas an app's config file names (a file of an older workbench: its one upstream container)."""
    found = [Replica(*m.groups()) for m in REPLICA_LINE.finditer(text) if SERVER.match(m.group(3))]
    if found:
        return found
    server = UPSTREAM_SERVER.search(text)
    return [Replica(server.group(1), "", server.group(0).split()[1].rstrip(";"))] if server else []
