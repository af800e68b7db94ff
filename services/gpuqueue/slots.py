"""The devices a job can be given, and the kernel locks that say who holds them.

Each GPU is a slot; a machine without one has a single CPU slot, so CPU fine-tunes still take
turns. A fine-tune holds its slots' locks exclusively; a chat model holds its GPU's lock shared,
which keeps fine-tunes off that GPU while colleagues' chat models may share it.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.gpuqueue.folder import FILE_MODE

if TYPE_CHECKING:
    from services.gpu import Gpu

CPU_SLOT = "cpu"


@dataclass(frozen=True)
class Slot:
    """One device: `id` names its lock and goes into CUDA_VISIBLE_DEVICES (uuid, else index)."""

    id: str
    index: int | None = None
    name: str = "CPU"
    total_bytes: int | None = None
    free_bytes: int | None = None
    utilisation_pct: int | None = None

    @property
    def label(self) -> str:
        return CPU_SLOT if self.index is None else f"GPU {self.index}"


def detect_slots() -> list[Slot]:
    """The machine's GPUs as slots, in nvidia-smi order; one CPU slot without a GPU."""
    from services.gpu import detect_gpus

    return slots_of(detect_gpus())


def slots_of(gpus: list[Gpu]) -> list[Slot]:
    """`gpus` as slots; one CPU slot for none."""
    slots = [
        Slot(
            id=gpu.visible_id,
            index=gpu.index,
            name=gpu.name,
            total_bytes=gpu.total_bytes,
            free_bytes=gpu.free_bytes,
            utilisation_pct=gpu.utilisation_pct,
        )
        for gpu in gpus
    ]
    return slots or [Slot(CPU_SLOT)]


def visible_devices(slots: list[Slot]) -> str | None:
    """CUDA_VISIBLE_DEVICES for these slots; None for the CPU slot."""
    ids = [slot.id for slot in slots if slot.index is not None]
    return ",".join(ids) if ids else None


class Lock:
    """An `flock` on a file in the queue folder; the kernel releases it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def take(self, *, shared: bool = False, wait: bool = False) -> bool:
        """Lock the file; False if someone else holds it (and `wait` is False)."""
        fd = _open(self.path)
        flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def is_locked(path: Path, *, exclusive_only: bool = False) -> bool:
    """Whether some live process holds `path` (any lock, or only an exclusive one)."""
    if not path.exists():
        return False
    probe = Lock(path)
    if probe.take(shared=exclusive_only):
        probe.release()
        return False
    return True


def _open(path: Path) -> int:
    """Open for locking: create it readable by the group if new; read-only is enough for flock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, FILE_MODE)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    if os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, FILE_MODE)
    return fd
