"""Waiting a turn, holding GPUs, the view every user sees, and cancel requests.

Decisions are made under `locks/schedule.lock`, so two waiters never take the same GPU. Every
waiter looks at the whole queue each round; only the one the fair order picks takes its slots.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from services.errors import NotFoundError, UsageError
from services.gpuqueue import entries
from services.gpuqueue.entries import Entry, user_name
from services.gpuqueue.fair import Usage, gpu_time, order, pick
from services.gpuqueue.folder import DEFAULT_STATE_DIR, QueueFolder, create_private, may_admin, open_folder
from services.gpuqueue.slots import Lock, Slot, detect_slots, is_locked, visible_devices

STATE_DIR_ENV = "WORKBENCH_SERVER__STATE_DIR"  # the `server.state_dir` setting, for the trainer process
POLL_S = 0.5
HEARTBEAT_S = 10.0


@dataclass(frozen=True)
class QueueView:
    """What `workbench gpu` and the status bar show: each slot's holders and the waiting order."""

    folder: QueueFolder
    slots: list[tuple[Slot, list[Entry]]]
    waiting: list[Entry]
    usage: Usage

    def position(self, entry_id: str) -> int | None:
        ids = [e.id for e in self.waiting]
        return ids.index(entry_id) + 1 if entry_id in ids else None


class GpuQueue:
    def __init__(self, folder: QueueFolder, *, slots: Callable[[], list[Slot]] = detect_slots) -> None:
        self.folder = folder
        self.slots = slots

    @classmethod
    def for_workspace(cls, data_dir: Path, state_dir: Path | None = None) -> GpuQueue:
        """The shared queue if this machine has one this user may use, else the workspace's own."""
        state_dir = state_dir or Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)
        return cls(open_folder(state_dir, data_dir))

    def wait_turn(self, entry: Entry, stop: threading.Event) -> Grant | None:
        """Queue `entry` and block until it holds its slots; None when stopped or cancelled first."""
        self._refuse_impossible(entry)
        life = entries.hold(self.folder, entry)
        entry = entries.write(self.folder, entry)
        self._sweep_own_dead()
        try:
            while not stop.is_set() and not self.cancel_requested(entry):
                grant = self._try_start(entry, life)
                if grant is not None:
                    return grant
                if time.time() - entry.seen_at > HEARTBEAT_S:
                    entry = entries.write(self.folder, entry)
                stop.wait(POLL_S)
        except BaseException:
            self._drop(entry, life)
            raise
        self._drop(entry, life)
        return None

    def hold_for_chat(self, name: str, device_index: int) -> Grant | None:
        """Register a chat model loaded on GPU `device_index` (shared hold); None on a CPU-only machine."""
        slot = next((s for s in self.slots() if s.index == device_index), None)
        if slot is None:
            return None
        entry = Entry(user=entries.current_user(), kind="chat", name=name, state="running", devices=[slot.id])
        with self._deciding():
            lock = Lock(self._slot_lock(slot))
            if not lock.take(shared=True):
                holder = self._holder_of(slot)
                raise UsageError(f"{slot.label} is held by {holder}", hint="load the model when the job ends")
            life = entries.hold(self.folder, entry)
            entry = entries.write(self.folder, replace(entry, started_at=time.time()))
        return Grant(self, entry, life, [lock], [slot])

    def view(self) -> QueueView:
        live, dead = entries.read_all(self.folder)
        usage = self.usage(live, dead)
        running = [e for e in live if e.state == "running"]
        held = [(slot, [e for e in running if slot.id in e.devices]) for slot in self.slots()]
        waiting = order([e for e in live if e.state == "queued"], usage)
        return QueueView(self.folder, held, waiting, usage)

    def usage(self, live: list[Entry], dead: list[Entry]) -> Usage:
        now = time.time()
        since = now - self.folder.policy.fair_window_s
        jobs = [e for e in live + dead if e.kind == "finetune"]
        return gpu_time(self._records(since), jobs, since, now)

    def cancel(self, entry_id: str) -> str:
        """Stop a queued or running job: signal it if it is ours (or we are root), else leave a request."""
        entry = next((e for e in entries.read_all(self.folder)[0] if e.id.startswith(entry_id)), None)
        if entry is None:
            raise NotFoundError(f"no waiting or running job {entry_id!r} in the GPU queue")
        me = os.geteuid()
        if me in (0, entry.uid):
            _terminate(entry.pid)
            return f"asked {entry.user}'s {entry.kind} {entry.name!r} to stop"
        if may_admin(me, self.folder.policy):
            # a name of its own, so nobody can block the request by taking its name first
            create_private(self.folder.sub("cancel") / f"{entry.id}.{uuid.uuid4().hex}", str(me))
            return f"asked {entry.user}'s {entry.kind} {entry.name!r} to stop (admin request)"
        admin = self.folder.policy.admin_group
        raise UsageError(
            f"{entry.name!r} belongs to {entry.user}",
            hint=f"only {entry.user}, root{f' or the {admin} group' if admin else ''} may cancel it",
        )

    def cancel_requested(self, entry: Entry) -> bool:
        """Whether the owner, root or an admin asked `entry` to stop (a request by anyone else is ignored)."""
        for path in self.folder.sub("cancel").glob(f"{entry.id}.*"):
            try:
                requester = path.stat().st_uid  # the kernel's word, not the file's
            except FileNotFoundError:
                continue
            if requester == entry.uid or may_admin(requester, self.folder.policy):
                return True
        return False

    # -- inside ------------------------------------------------------------------------------

    def _try_start(self, entry: Entry, life: Lock) -> Grant | None:
        with self._deciding():
            live, dead = entries.read_all(self.folder)
            slots = self.slots()
            free = [slot for slot in slots if not is_locked(self._slot_lock(slot))]
            waiting = [e for e in live if e.state == "queued" and e.kind == "finetune"]
            choice = pick(waiting, free, len(slots), self.usage(live, dead))
            if choice is None or choice[0].id != entry.id:
                return None
            locks = [Lock(self._slot_lock(slot)) for slot in choice[1]]
            if not all(lock.take() for lock in locks):
                for lock in locks:
                    lock.release()
                return None
            devices = [slot.id for slot in choice[1]]
            started = entries.write(
                self.folder, replace(entry, state="running", started_at=time.time(), devices=devices)
            )
        return Grant(self, started, life, locks, choice[1])

    def _deciding(self) -> _Held:
        lock = Lock(self.folder.sub("locks") / "schedule.lock")
        lock.take(wait=True)
        return _Held(lock)

    def _slot_lock(self, slot: Slot) -> Path:
        return self.folder.sub("locks") / f"slot-{slot.id}.lock"

    def _holder_of(self, slot: Slot) -> str:
        for entry in entries.read_all(self.folder)[0]:
            if slot.id in entry.devices and entry.state == "running":
                return f"{entry.user}'s {entry.kind} {entry.name!r}"
        return "another process"

    def _refuse_impossible(self, entry: Entry) -> None:
        slots = self.slots()
        if slots[0].index is not None and isinstance(entry.gpus, int) and entry.gpus > len(slots):
            raise UsageError(
                f"the job asks for {entry.gpus} GPUs; this machine has {len(slots)}",
                hint="set training.gpus (and num_processes) to at most that",
            )

    def _drop(self, entry: Entry, life: Lock) -> None:
        entries.remove(self.folder, entry.id)
        life.release()

    def _records(self, since: float) -> list[tuple[str, float, float, int]]:
        """Finished GPU time from every user's `usage/<uid>.jsonl`, trusting a file only for its owner."""
        rows = []
        for path in self.folder.sub("usage").glob("*.jsonl"):
            try:
                owner = path.stat().st_uid
                lines = path.read_text().splitlines() if str(owner) == path.stem else []
            except OSError:
                continue
            user = user_name(owner)
            rows += [(user, *row) for line in lines if (row := _usage_row(line)) is not None and row[1] >= since]
        return rows

    def _record(self, entry: Entry, end: float) -> None:
        if entry.started_at is None or entry.kind != "finetune":
            return
        row = {"start": entry.started_at, "end": end, "gpus": max(1, len(entry.devices))}
        path = self.folder.sub("usage") / f"{os.geteuid()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (json.dumps(row) + "\n").encode())
        finally:
            os.close(fd)

    def _sweep_own_dead(self) -> None:
        """Turn this user's entries left by killed processes into usage records."""
        for entry in entries.read_all(self.folder)[1]:
            if entry.uid == os.geteuid():
                self._record(entry, entry.seen_at)
                entries.remove(self.folder, entry.id)


class _Held:
    def __init__(self, lock: Lock) -> None:
        self.lock = lock

    def __enter__(self) -> Lock:
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


class Grant:
    """Slots held for one job or chat model until `release` (or the process's death)."""

    def __init__(self, queue: GpuQueue, entry: Entry, life: Lock, locks: list[Lock], slots: list[Slot]) -> None:
        self.queue, self.entry, self.slots = queue, entry, slots
        self._life, self._locks = life, locks
        self._guard = threading.Lock()  # a heartbeat thread never republishes a released entry

    @property
    def visible_devices(self) -> str | None:
        return visible_devices(self.slots)

    @property
    def devices(self) -> list[str] | None:
        """The GPUs for CUDA_VISIBLE_DEVICES; None when the job holds the CPU slot."""
        return [slot.id for slot in self.slots if slot.index is not None] or None

    def publish(self, progress: float | None, eta_s: float | None) -> None:
        """Show the job's progress and ETA to everyone (also the heartbeat that bounds a dead job's time)."""
        with self._guard:
            if self._life.held:
                self.entry = entries.write(self.queue.folder, replace(self.entry, progress=progress, eta_s=eta_s))

    def release(self) -> None:
        with self._guard:
            if not self._life.held:
                return
            self.queue._record(self.entry, time.time())
            entries.remove(self.queue.folder, self.entry.id)
            for lock in self._locks:
                lock.release()
            self._life.release()


def _usage_row(line: str) -> tuple[float, float, int] | None:
    """(start, end, gpus) of one finished job; the user is the file's owner, never the row's say."""
    try:
        row = json.loads(line)
        start, end, gpus = float(row["start"]), float(row["end"]), int(row["gpus"])
    except (ValueError, KeyError, TypeError):
        return None
    return (start, end, gpus) if end >= start and gpus >= 1 else None


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
