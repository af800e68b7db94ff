"""The host port a replica on another host than the proxy's is published on.

The proxy reaches such a replica at `host:port`, written into the app's upstream at deploy time. A port Docker
chooses (an ephemeral binding) is chosen again whenever the container starts, so a replica its engine
restarted (restart policy, a reboot of that host) would come back on another port, unreachable until the next
deploy. So the deploy chooses the port itself and pins it in the container's port binding: every start
publishes the same port and nginx finds the replica again at its next try (`FAIL_TIMEOUT_S`). The port is
drawn from Docker's own ephemeral range (the hosts' network lets the proxy's host reach it, see the README),
skipping every port a container on that engine publishes or has pinned, running or stopped (a kept container
gets its port back on a rollback); a port something else holds fails the start, and another is drawn.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docker import DockerClient

PORT_RANGE = (32768, 60999)
"""Docker's (and Linux's) ephemeral port range: what the hosts' firewall already opens to the proxy's host."""
TRIES = 5
"""Ports tried before a start that keeps meeting a taken port fails."""


def taken_ports(client: DockerClient) -> set[int]:
    """Host ports containers on the engine publish now (any container) or have pinned (the workbench's apps,
    stopped ones too)."""
    used = {int(p["PublicPort"]) for c in client.api.containers() for p in c.get("Ports") or [] if p.get("PublicPort")}
    for container in client.containers.list(all=True, filters={"label": "workbench.role=app"}):
        bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
        used |= {int(b["HostPort"]) for each in bindings.values() for b in each or [] if _port(b)}
    return used


def pick_port(taken: set[int], rng: random.Random | None = None) -> int:
    """A port of `PORT_RANGE` not in `taken`, at random (two deploys at once rarely draw the same)."""
    draw = rng or random.SystemRandom()
    while True:
        port = draw.randint(*PORT_RANGE)
        if port not in taken:
            return port


def port_conflict(exc: Exception) -> bool:
    """Whether a container's start failed because its host port is taken."""
    text = str(getattr(exc, "explanation", "") or exc)
    return "port is already allocated" in text or "address already in use" in text


def _port(binding: Any) -> bool:
    return isinstance(binding, dict) and str(binding.get("HostPort", "")).isdigit()
