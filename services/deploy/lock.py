"""The deploy lock of one app on one target: a container that is created, never started.

Creating a container with a fixed name is atomic on the engine, so of two deploys exactly one gets
the lock; the other reads the owner, version and time from the lock's labels. A lock whose owner
process is gone (same machine, dead pid) or that is older than `STALE_AFTER_S` is stale: the next
deploy offers to clear it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.errors import DeployLockedError, NotFoundError

if TYPE_CHECKING:
    from docker import DockerClient

STALE_AFTER_S = 3600.0


@dataclass(frozen=True)
class Lock:
    """Who holds an app's deploy lock on a target."""

    app: str
    owner: str
    version: str
    at: str
    host: str
    pid: int

    @property
    def age_s(self) -> float:
        return (datetime.now(UTC) - datetime.fromisoformat(self.at)).total_seconds()

    @property
    def stale(self) -> bool:
        """The holder died (on this machine) or the lock outlived any deploy."""
        if self.host == socket.gethostname() and not _alive(self.pid):
            return True
        return self.age_s > STALE_AFTER_S

    def describe(self) -> str:
        return f"{self.owner} (deploying {self.version} since {self.at}, pid {self.pid} on {self.host})"


def lock_name(app: str) -> str:
    return f"wb-lock-{app}"


def acquire(client: DockerClient, app: str, *, owner: str, version: str, image: str) -> Lock:
    """Take the lock or raise DeployLockedError naming who holds it (the lock's image is any local image)."""
    from docker.errors import APIError

    lock = Lock(app, owner, version, datetime.now(UTC).isoformat(timespec="seconds"), socket.gethostname(), os.getpid())
    labels = {
        "workbench.role": "lock",
        "workbench.app": app,
        "workbench.owner": owner,
        "workbench.version": version,
        "workbench.at": lock.at,
        "workbench.host": lock.host,
        "workbench.pid": str(lock.pid),
    }
    try:
        client.containers.create(image, ["true"], name=lock_name(app), labels=labels)
    except APIError as exc:
        if exc.status_code != 409:
            raise
        held = current(client, app)
        if held is None:  # released between our try and our look: try once more
            return acquire(client, app, owner=owner, version=version, image=image)
        stale = " It looks stale (its deploy died): the next deploy offers to clear it." if held.stale else ""
        raise DeployLockedError(
            f"{app} is being deployed to this target by {held.describe()}.{stale}",
            hint="wait for it, or clear it with `workbench deploy lock release APP --target T` if that deploy is gone",
        ) from None
    return lock


def current(client: DockerClient, app: str) -> Lock | None:
    """The lock on `app`, or None."""
    from docker.errors import NotFound

    try:
        labels = client.containers.get(lock_name(app)).labels
    except NotFound:
        return None
    return Lock(
        app,
        labels.get("workbench.owner", "?"),
        labels.get("workbench.version", "?"),
        labels.get("workbench.at", "1970-01-01T00:00:00+00:00"),
        labels.get("workbench.host", "?"),
        int(labels.get("workbench.pid", "0") or 0),
    )


def release(client: DockerClient, app: str) -> Lock:
    """Remove the lock; NotFoundError when there is none."""
    from docker.errors import NotFound

    held = current(client, app)
    if held is None:
        raise NotFoundError(f"{app} is not locked on this target")
    with contextlib.suppress(NotFound):
        client.containers.get(lock_name(app)).remove(force=True)
    return held


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
