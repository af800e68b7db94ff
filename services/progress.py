"""Cancel tokens and progress events shared by long-running service functions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.errors import CancelledError


class CancelToken:
    """A flag a caller sets to ask a long operation to stop at its next checkpoint."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or `timeout` seconds pass; True when cancelled (watcher threads)."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self, what: str) -> None:
        if self._event.is_set():
            raise CancelledError(f"{what} cancelled", hint="run it again to resume")


@dataclass(frozen=True)
class TransferProgress:
    """Bytes moved so far in a transfer of known total size."""

    done_bytes: int
    total_bytes: int
    bytes_per_s: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 1.0


OnTransfer = Callable[[TransferProgress], None]


@dataclass
class TransferMeter:
    """Turns byte counts into `TransferProgress` events with a smoothed rate.

    Calls ``on_progress`` at most every ``interval_s`` (and once at the end), so a
    high-rate download never floods the UI with events.
    """

    total_bytes: int
    on_progress: OnTransfer | None = None
    interval_s: float = 0.1
    done_bytes: int = 0
    _started: float = field(default_factory=time.monotonic)
    _resumed_bytes: int = 0
    _last_emit: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def skip(self, n: int) -> None:
        """Count bytes already present (resumed or cached) without affecting the rate."""
        with self._lock:
            self.done_bytes += n
            self._resumed_bytes += n

    def add(self, n: int) -> None:
        with self._lock:
            self.done_bytes += n
            now = time.monotonic()
            if now - self._last_emit < self.interval_s:
                return
            self._last_emit = now
        self._emit()

    def finish(self) -> TransferProgress:
        return self._emit()

    def snapshot(self) -> TransferProgress:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = (self.done_bytes - self._resumed_bytes) / elapsed
        left = max(self.total_bytes - self.done_bytes, 0)
        eta = left / rate if rate > 0 else None
        return TransferProgress(self.done_bytes, self.total_bytes, rate, eta)

    def _emit(self) -> TransferProgress:
        event = self.snapshot()
        if self.on_progress is not None:
            self.on_progress(event)
        return event
