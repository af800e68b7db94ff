"""Rolling replacement of an app's replicas, one at a time and new before old, so capacity never drops.

For each new replica (a deploy's fresh container, or a rollback's kept one): start it on its host, wait for its
/readyz, check that the proxy reaches it (a replica on another host: its published port, from the proxy's own
container), then rewrite the app's upstream with it in and one old replica out (the one on the same host when
there is one) and reload nginx, then drain and stop that old replica (or keep it warm). The proxy balances over
every replica in the upstream, so while a deploy runs both versions answer. A failure halfway puts the
replaced replicas back (restarted when they were stopped) before the new ones are removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.deploy import proxy
from services.deploy.serving import drain, wait_ready
from services.deploy.target import AppSpec, Target
from services.deploy.upstream import Replica, local_replica, remote_replica
from services.errors import DeployFailedError

if TYPE_CHECKING:
    from docker import DockerClient

Step = Callable[[str], contextlib.AbstractContextManager[Callable[[str], None]]]

REACH_PROBE = """
url=$1 tries=$2
if command -v python3 >/dev/null 2>&1; then
    get() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url"; }
elif command -v wget >/dev/null 2>&1; then
    get() { wget -q -O /dev/null -T 2 "$url"; }
else
    exit 3
fi
i=0
while [ "$i" -lt "$tries" ]; do
    get >/dev/null 2>&1 && exit 0
    i=$((i + 1))
    sleep 0.2
done
exit 1
"""
"""Polls a replica's /readyz from inside the proxy's container (python3 or busybox wget); exit 3: no client."""
REACH_TRIES = 50


@dataclass(frozen=True)
class Slot:
    """One replica to bring into service: where, and how to get its container running."""

    engine: str
    start: Callable[[DockerClient], Any]
    """Starts (or creates and starts) the container on the engine's client; returns it."""
    label: str = ""
    """Said after the container's name in the start step, e.g. " (warm)"."""
    name: str = ""
    """The container it brings back when that is known beforehand (a rollback's kept one): never drained by an
    earlier switch of the same rollout."""


@dataclass
class Rollout:
    """One rolling replacement on a target's engines (`clients`, the proxy's first)."""

    target: Target
    spec: AppSpec
    clients: dict[str, DockerClient]
    step: Step
    hold: Callable[[], None] = lambda: None
    """Called right before each switch (the deploy lock's renewal: traffic moves only while it is held)."""
    gateway: Any = None
    old: list[Replica] = field(default_factory=list)
    original: list[Replica] = field(default_factory=list)
    new: list[Replica] = field(default_factory=list)
    retired: list[Replica] = field(default_factory=list)
    warm: list[Replica] = field(default_factory=list)
    started: list[tuple[str, str]] = field(default_factory=list)
    """(engine, container) of every container this rollout started."""
    coming: set[str] = field(default_factory=set)
    """The named containers of the slots still to come (a warm one stays running until its turn)."""

    def run(self, slots: list[Slot], on_serving: Callable[[], None] = lambda: None) -> list[Replica]:
        """Bring every slot into service in order; returns the replicas now in the upstream."""
        for index, slot in enumerate(slots):
            self.coming = {s.name for s in slots[index + 1 :] if s.name}
            self._one(slot, index, len(slots))
            if index == 0:
                on_serving()
        return self.new

    def _one(self, slot: Slot, index: int, count: int) -> None:
        which = f", replica {index + 1} of {count}" if count > 1 else ""
        where = f" on {self.target.address(slot.engine)}" if len(self.target.engines) > 1 else ""
        with self.step("start") as note:
            container = slot.start(self.clients[slot.engine])
            self.started.append((slot.engine, container.name))
            note(f"{container.name}{slot.label}{where}{which}")
        with self.step("ready") as note:
            note(f"/readyz after {wait_ready(container, self.spec):.1f} s")
        with self.step("switch") as note:
            self.hold()
            replica = self.replica(container, slot.engine)
            gateway = self._gateway()
            if replica.engine != self.target.docker_host:
                reachable(gateway, replica)
            retire = self._retire(slot.engine, count)
            self.new.append(replica)
            self._route(self.new + self.old)
            note(f"from {', '.join(r.container for r in retire)}" if retire else "first version" if index == 0 and
                 not self.original else f"{len(self.new) + len(self.old)} in rotation")  # fmt: skip
        with self.step("drain") as note:
            note(self._drain(retire, last=index == count - 1))

    def replica(self, container: Any, engine: str) -> Replica:
        """How the proxy reaches `container` on `engine`: by name on its own host, else by published port."""
        port = self.spec.container_port
        if engine == self.target.docker_host:
            return local_replica(container.name, engine, port)
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
        published = next((int(b["HostPort"]) for b in bindings if str(b.get("HostPort", "")).isdigit()), None)
        if published is None:
            raise DeployFailedError(f"{container.name} on {engine} publishes no port for {port}/tcp")
        return remote_replica(container.name, engine, self.target.address(engine), published)

    def _gateway(self) -> Any:
        """The proxy (made or recreated at the first switch) and the replicas it served before this rollout."""
        if self.gateway is None:
            self.gateway = proxy.ensure_proxy(self.clients[self.target.docker_host], self.target)
            ours = {name for _, name in self.started}
            served = proxy.replicas_of(self.gateway, self.spec.name)
            self.old = [Replica(r.container, r.engine or self.target.docker_host, r.server) for r in served
                        if r.container not in ours]  # fmt: skip
            self.old = [r for r in self.old if self._running_here(r)]  # a name nginx cannot resolve fails its reload
            self.original = list(self.old)
        return self.gateway

    def _retire(self, engine: str, count: int) -> list[Replica]:
        """The old replicas leaving rotation at this switch: one per new replica (the one on `engine` first)
        while more than `count` would serve."""
        retire = []
        while self.old and len(self.new) + 1 + len(self.old) > count:
            pick = next((r for r in self.old if r.engine == engine), self.old[0])
            self.old.remove(pick)
            retire.append(pick)
        self.retired += retire
        return retire

    def _route(self, replicas: list[Replica]) -> None:
        spec, client = self.spec, self.clients[self.target.docker_host]
        repair = lambda: proxy.heal(client, self.gateway, self.target)  # noqa: E731
        proxy.route(self.gateway, spec.name, spec.port, replicas, spec.container_port, self.target.tls, repair=repair)

    def _running_here(self, replica: Replica) -> bool:
        """Whether a replica on the proxy's host still runs (one on another host counts: nginx ejects it)."""
        from docker.errors import NotFound

        if replica.engine != self.target.docker_host:
            return True
        try:
            return bool(self.clients[replica.engine].containers.get(replica.container).status == "running")
        except NotFound:
            return False

    def _drain(self, retire: list[Replica], *, last: bool) -> str:
        """Drain and stop (or keep warm) the replicas that left rotation; after the last switch also any other
        running container of the app on every host (a warm one of an earlier deploy)."""
        said = []
        swept = set()
        for replica in retire:
            client = self.clients.get(replica.engine)
            if client is None:
                said.append(f"{replica.container} left running on {replica.engine} (no longer a host of the target)")
                continue
            said.append(drain(client, self.spec, replica.container, "", keep=self._kept()))
            swept.add(replica.engine)
            if self.spec.keep_previous_warm:
                self.warm.append(replica)
        for engine, client in self.clients.items() if last else ():
            if engine not in swept:
                said.append(drain(client, self.spec, None, "", keep=self._kept()))
        return "; ".join(s for s in said if s != "nothing to drain") or "nothing to drain"

    def _kept(self) -> set[str]:
        return {r.container for r in self.new + self.old + self.warm} | self.coming

    def undo(self) -> None:
        """After a failure: when any replica of this rollout is in the upstream, put the replaced ones back
        (restarting those that were stopped) and route to them alone."""
        if self.gateway is None or not self.new:
            return
        restored = [r for r in self.original if r not in self.retired] + [self._restart(r) for r in self.retired]
        self._route(restored or self.original)
        self.new = []

    def _restart(self, replica: Replica) -> Replica:
        container = self.clients[replica.engine].containers.get(replica.container)
        if container.status != "running":
            container.start()
        wait_ready(container, self.spec)
        return self.replica(container, replica.engine)

    def routed(self) -> set[str]:
        """Containers the app's upstream names now (after `undo`, what still serves)."""
        return {r.container for r in (self.new + self.old if self.new else self.original)}


def reachable(gateway: Any, replica: Replica) -> None:
    """DeployFailedError unless the proxy's container gets 200 from `replica`'s /readyz (polled up to 10 s);
    a proxy image with neither python3 nor wget is not checked (nginx ejects a replica it cannot reach)."""
    url = f"http://{replica.server}/readyz"
    done = gateway.exec_run(["sh", "-c", REACH_PROBE, "sh", url, str(REACH_TRIES)])
    if done.exit_code not in (0, 3):
        raise DeployFailedError(
            f"the proxy cannot reach {replica.container} at {replica.server} (its published port on its host)",
            hint="let the proxy's host reach the other hosts' published ports (firewall, NSG), then deploy again",
        )
