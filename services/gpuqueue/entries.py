"""One record per waiting or running job (or loaded chat model), alive while its owner holds its lock.

`entries/<id>.json` says what everyone may see: who, what, how many GPUs, which ones, progress and
ETA; never the job's config. `entries/<id>.lock` is held by the owning process for its whole life,
so an entry whose lock is free belongs to a process that died and only counts towards its
user's GPU time.
"""

from __future__ import annotations

import json
import os
import pwd
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from services.gpuqueue.folder import QueueFolder, create_private
from services.gpuqueue.slots import Lock, is_locked

Kind = Literal["finetune", "chat"]
State = Literal["queued", "running"]
Wanted = int | Literal["all"]


@dataclass(frozen=True)
class Entry:
    """What the queue shows of one job or chat model."""

    user: str
    kind: Kind
    name: str
    gpus: Wanted = 1
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    uid: int = field(default_factory=os.geteuid)
    pid: int = field(default_factory=os.getpid)
    state: State = "queued"
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    seen_at: float = field(default_factory=time.time)
    devices: list[str] = field(default_factory=list)
    progress: float | None = None
    eta_s: float | None = None

    def gpu_seconds(self, since: float, until: float) -> float:
        """GPU time this entry used inside [since, until] (a dead entry stopped at its last sighting)."""
        if self.started_at is None:
            return 0.0
        end = min(until, self.seen_at)
        return max(0.0, end - max(since, self.started_at)) * max(1, len(self.devices))


def current_user() -> str:
    return user_name(os.geteuid())


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def write(folder: QueueFolder, entry: Entry) -> Entry:
    """Publish `entry` (stamped as seen now); readers see the old record or the new one."""
    entry = replace(entry, seen_at=time.time())
    create_private(_json(folder, entry.id), json.dumps(asdict(entry)))
    return entry


def hold(folder: QueueFolder, entry: Entry) -> Lock:
    """Take the entry's life lock (before its record is written, so it is never seen as dead)."""
    lock = Lock(folder.sub("entries") / f"{entry.id}.lock")
    if not lock.take():
        raise RuntimeError(f"queue entry {entry.id} is already held")
    return lock


def remove(folder: QueueFolder, entry_id: str) -> None:
    for path in (_json(folder, entry_id), folder.sub("entries") / f"{entry_id}.lock"):
        path.unlink(missing_ok=True)


def read_all(folder: QueueFolder) -> tuple[list[Entry], list[Entry]]:
    """(live entries, dead ones); unreadable or torn records are skipped."""
    live: list[Entry] = []
    dead: list[Entry] = []
    for path in sorted(folder.sub("entries").glob("*.json")):
        entry = _parse(path)
        if entry is None:
            continue
        alive = is_locked(folder.sub("entries") / f"{entry.id}.lock")
        (live if alive else dead).append(entry)
    return live, dead


def _parse(path: Path) -> Entry | None:
    """The entry in `path` if it is well formed and its file's owner is the uid it claims."""
    try:
        owner = path.stat().st_uid
        entry = Entry(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not _well_formed(entry) or path.stem != entry.id or owner != entry.uid:
        return None
    return replace(entry, user=user_name(owner))


def _well_formed(entry: Entry) -> bool:
    return (
        isinstance(entry.user, str)
        and entry.kind in ("finetune", "chat")
        and entry.state in ("queued", "running")
        and (entry.gpus == "all" or (isinstance(entry.gpus, int) and entry.gpus >= 1))
        and isinstance(entry.devices, list)
        and all(isinstance(d, str) for d in entry.devices)
        and isinstance(entry.queued_at, int | float)
    )


def _json(folder: QueueFolder, entry_id: str) -> Path:
    return folder.sub("entries") / f"{entry_id}.json"
