"""The deploy lock of one app on one target: a container that is created, never started, with a lease.

Creating a container with a fixed name is atomic on the engine, so of two deploys exactly one gets the
lock; the other reads the owner, version and start from the lock's labels. The holder keeps a lease:
it writes a new expiry (in the target engine's clock, so no two machines' clocks are compared) into the
lock container every `RENEW_S` while its deploy runs. A lock is stale only when its lease expired, or
when its owner ran on this very machine (same boot) and that process is provably gone. Only the holder
removes its lock (by the container's id, so never a successor's); anyone else must name the holder
(`break_lock`, `workbench deploy lock release APP --force OWNER`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import DeployLockedError, NextStep, UsageError

if TYPE_CHECKING:
    from docker import DockerClient

LEASE_S = 90.0
"""A lock whose holder has not renewed it for this long is stale."""
RENEW_S = 15.0
"""How often a running deploy renews its lease."""
LEGACY_STALE_AFTER_S = 3600.0
"""Locks written before leases existed expire this long after they were taken."""
LEASE_FILE = "wb-lease.json"
LEASE_TAR_MAX = 64 * 1024
"""Bytes of a lock's lease archive read at most (the target answers; it is not trusted to be small)."""
ENGINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


@dataclass(frozen=True)
class Process:
    """Who runs a deploy: enough to prove, on the same machine, that it is gone."""

    host: str
    pid: int
    boot: str
    """This boot of this machine (Linux boot_id); empty where unknown."""
    started: str
    """The process's start time in clock ticks since boot; empty where unknown."""

    @classmethod
    def me(cls) -> Process:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _boot_id(), _start_ticks(pid))

    def provably_dead(self) -> bool:
        """True only on the machine and boot that ran it, when that pid is gone or is another process."""
        if not self.boot or self.boot != _boot_id():
            return False
        return not _alive(self.pid) or (bool(self.started) and _start_ticks(self.pid) not in ("", self.started))


@dataclass(frozen=True)
class Lock:
    """Who holds an app's deploy lock on a target, as read at `now` (the target engine's clock)."""

    app: str
    owner: str
    version: str
    at: str
    host: str
    pid: int
    id: str = ""
    """The lock container's id: what the holder removes, never a lock by name."""
    release: str = ""
    containers: tuple[str, ...] = ()
    """The app containers this deploy starts, or restarts (a rollback brings back each kept replica)."""
    expires: datetime | None = None
    now: datetime | None = None
    process: Process | None = None

    @property
    def expired(self) -> bool:
        """The holder stopped renewing its lease."""
        if self.expires is None or self.now is None:
            return False
        return self.now >= self.expires

    @property
    def stale(self) -> bool:
        """The lease expired, or the holder ran on this machine and is provably gone."""
        return self.expired or (self.process is not None and self.process.provably_dead())

    def describe(self) -> str:
        return f"{self.owner} (deploying {self.version} since {self.at}, pid {self.pid} on {self.host})"


def lock_name(app: str) -> str:
    return f"wb-lock-{app}"


def engine_now(client: DockerClient) -> datetime:
    """The target engine's clock (leases are compared in it); this machine's clock when it says nothing."""
    found = ENGINE_TIME.match(str(client.info().get("SystemTime", "")))
    if found is None:
        return datetime.now(UTC)
    zone = found[3] if found[3] not in (None, "Z") else "+00:00"
    return datetime.fromisoformat(found[1] + (found[2] or ".0")[:7] + zone).astimezone(UTC)


class Lease:
    """The holder's handle on a lock it took: renew it, keep it renewed while a deploy runs, release it."""

    def __init__(self, lock: Lock, lease_s: float) -> None:
        self.lock = lock
        self.lease_s = lease_s
        self._lost = threading.Event()
        self._renewed = time.monotonic()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def renew(self, client: DockerClient) -> None:
        """Push the expiry `lease_s` ahead; DeployLockedError when the lock is no longer ours."""
        from docker.errors import NotFound

        expires = engine_now(client) + timedelta(seconds=self.lease_s)
        try:
            client.api.put_archive(self.lock.id, "/", _lease_tar(expires))
        except NotFound:
            self._lost.set()
            raise self._lost_error() from None
        self._renewed = time.monotonic()

    def check(self) -> None:
        """DeployLockedError when the lock was taken away or could not be renewed for most of a lease."""
        if self.lost or time.monotonic() - self._renewed > self.lease_s * 0.8:
            raise self._lost_error()

    @contextlib.contextmanager
    def kept(self, client: DockerClient, every_s: float = RENEW_S) -> Iterator[Lease]:
        """Renew the lease every `every_s` in a background thread until the block ends."""
        stop = threading.Event()
        thread = threading.Thread(target=self._renew_until, args=(client, stop, every_s), daemon=True)
        thread.name = f"wb-lease-{self.lock.app}"
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=30)

    def release(self, client: DockerClient) -> bool:
        """Remove our lock (by its container id); False when it was already gone."""
        from docker.errors import NotFound

        try:
            client.api.remove_container(self.lock.id, force=True)
        except NotFound:
            return False
        return True

    def _renew_until(self, client: DockerClient, stop: threading.Event, every_s: float) -> None:
        while not stop.wait(every_s):
            try:
                self.renew(client)
            except DeployLockedError:
                return
            except Exception:  # a failed renewal is retried; `check` notices a long gap
                continue

    def _lost_error(self) -> DeployLockedError:
        return DeployLockedError(
            f"the deploy of {self.lock.app} lost its lock on this target (cleared by someone else, or not renewed"
            " in time); it stops before changing anything more",
            step=NextStep.of("deploy.lock_status", app=self.lock.app),
        )


def acquire(
    client: DockerClient,
    app: str,
    *,
    owner: str,
    version: str,
    image: str,
    release: str = "",
    containers: Sequence[str] = (),
    lease_s: float = LEASE_S,
) -> Lease:
    """Take the lock with a lease of `lease_s` or raise DeployLockedError naming who holds it (the lock's
    image is any local image)."""
    from docker.errors import APIError

    me = Process.me()
    now = engine_now(client)
    expires = now + timedelta(seconds=lease_s)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    labels = {
        "workbench.role": "lock",
        "workbench.app": app,
        "workbench.owner": owner,
        "workbench.version": version,
        "workbench.at": at,
        "workbench.host": me.host,
        "workbench.pid": str(me.pid),
        "workbench.boot": me.boot,
        "workbench.started": me.started,
        "workbench.release": release,
        "workbench.container": ",".join(containers),  # container names never hold a comma
        "workbench.expires": expires.isoformat(),
    }
    try:
        created = client.containers.create(image, ["true"], name=lock_name(app), labels=labels)
    except APIError as exc:
        if exc.status_code != 409:
            raise
        held = current(client, app)
        if held is None:  # released between our try and our look: try once more
            return acquire(client, app, owner=owner, version=version, image=image, release=release,
                           containers=containers, lease_s=lease_s)  # fmt: skip
        raise _locked(app, held) from None
    mine = Lock(app, owner, version, at, me.host, me.pid, str(created.id), release, tuple(containers), expires, now, me)
    return Lease(mine, lease_s)


def _locked(app: str, held: Lock) -> DeployLockedError:
    if held.stale:
        why = "its lease expired" if held.expired else "its process is gone"
        return DeployLockedError(
            f"{app} is locked on this target by {held.describe()}; {why}: the next deploy offers to clear it",
            step=NextStep.of("deploy.lock_release", app=app, owner=held.owner),
        )
    return DeployLockedError(
        f"{app} is being deployed to this target by {held.describe()}; its lease is being renewed",
        hint="wait for it to finish",
    )


def current(client: DockerClient, app: str) -> Lock | None:
    """The lock on `app` with its lease as the target sees it now, or None."""
    from docker.errors import NotFound

    try:
        found = client.containers.get(lock_name(app))
    except NotFound:
        return None
    labels: dict[str, str] = found.labels
    at = labels.get("workbench.at", "1970-01-01T00:00:00+00:00")
    now = engine_now(client)
    return Lock(
        app, labels.get("workbench.owner", "?"), labels.get("workbench.version", "?"), at,
        labels.get("workbench.host", "?"), _int(labels.get("workbench.pid")), str(found.id),
        labels.get("workbench.release", ""), tuple(filter(None, labels.get("workbench.container", "").split(","))),
        _expiry(client, str(found.id), labels, at), now, _process(labels),
    )  # fmt: skip


def break_lock(client: DockerClient, held: Lock) -> None:
    """Remove exactly the lock `held` (by its container id): a lock taken since is left alone."""
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        client.api.remove_container(held.id, force=True)


def check_named(held: Lock, holder: str | None) -> None:
    """UsageError naming the real holder unless `holder` names the owner of `held` (whoever clears a lock
    they do not hold must say whose it is)."""
    if holder == held.owner:
        return
    state = "stale: " + ("its lease expired" if held.expired else "its process is gone") if held.stale else "live"
    raise UsageError(
        f"{held.app} is locked by {held.describe()} ({state}); you do not hold this lock",
        step=NextStep.of("deploy.lock_release", app=held.app, owner=held.owner),
    )


def _expiry(client: DockerClient, container_id: str, labels: dict[str, str], at: str) -> datetime | None:
    """The later of the expiry the lock was taken with and the last renewal; a lease-less lock's legacy age."""
    given = [_time(labels.get("workbench.expires")), _renewed(client, container_id)]
    found = [t for t in given if t is not None]
    if found:
        return max(found)
    taken = _time(at)
    return taken + timedelta(seconds=LEGACY_STALE_AFTER_S) if taken else None


def _renewed(client: DockerClient, container_id: str) -> datetime | None:
    """The expiry in the lock's lease file, or None (not renewed yet, unreadable)."""
    from docker.errors import APIError

    try:
        stream, _ = client.api.get_archive(container_id, f"/{LEASE_FILE}")
        raw = _bounded(stream, LEASE_TAR_MAX)
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            member = tar.extractfile(LEASE_FILE)
            data = json.loads(member.read(LEASE_TAR_MAX)) if member else {}
    except (APIError, tarfile.TarError, ValueError, KeyError):
        return None
    return _time(data.get("expires")) if isinstance(data, dict) else None


def _bounded(stream: Iterator[bytes], limit: int) -> bytes:
    """The stream's bytes; ValueError past `limit`."""
    raw = b""
    for chunk in stream:
        raw += chunk
        if len(raw) > limit:
            raise ValueError(f"more than {limit} bytes")
    return raw


def _lease_tar(expires: datetime) -> bytes:
    data = json.dumps({"expires": expires.isoformat()}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(LEASE_FILE)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _process(labels: dict[str, str]) -> Process:
    return Process(
        labels.get("workbench.host", "?"),
        _int(labels.get("workbench.pid")),
        labels.get("workbench.boot", ""),
        labels.get("workbench.started", ""),
    )


def _time(text: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/PID/stat (start time since boot); empty when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
