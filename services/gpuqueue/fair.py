"""Who goes next: the waiting user with the least GPU time in the window, then the oldest job.

A pure choice, so the rule is tested without processes. The first job in this order starts as
soon as enough GPUs are free; jobs behind it wait even if they would fit (no overtaking), so a
job that asks for several GPUs is never starved by a stream of small ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from services.gpuqueue.entries import Entry
from services.gpuqueue.slots import Slot

Usage = dict[str, float]


def gpu_time(
    records: Iterable[tuple[str, float, float, int]], entries: Iterable[Entry], since: float, now: float
) -> Usage:
    """Each user's GPU seconds in [since, now]: finished records (user, start, end, gpus) plus entries."""
    used: defaultdict[str, float] = defaultdict(float)
    for user, start, end, gpus in records:
        used[user] += max(0.0, min(end, now) - max(start, since)) * gpus
    for entry in entries:
        used[entry.user] += entry.gpu_seconds(since, now)
    return dict(used)


def order(waiting: Iterable[Entry], usage: Usage) -> list[Entry]:
    """The waiting jobs in the order they will start."""
    return sorted(waiting, key=lambda e: (usage.get(e.user, 0.0), e.queued_at, e.id))


def count_wanted(entry: Entry, total: int) -> int:
    """Slots the entry takes; never more than the machine has (the queue refuses that on GPUs first)."""
    return total if entry.gpus == "all" else min(int(entry.gpus), total)


def pick(waiting: list[Entry], free: list[Slot], total: int, usage: Usage) -> tuple[Entry, list[Slot]] | None:
    """The job that starts now and its slots (most free memory first), or None."""
    if not waiting:
        return None
    first = order(waiting, usage)[0]
    wanted = count_wanted(first, total)
    if wanted > len(free):
        return None
    best = sorted(free, key=lambda s: (-(s.free_bytes or 0), s.index or 0))
    return first, best[:wanted]
