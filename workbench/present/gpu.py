"""The GPU queue as everyone sees it: each device and who holds it, then who waits, in order."""

from __future__ import annotations

import json
from typing import Any

from services.gpuqueue.entries import Entry
from services.gpuqueue.queue import QueueView
from services.gpuqueue.slots import Slot
from services.units import human_bytes
from workbench.present.finetune import duration
from workbench.present.text import table


def holder_text(entry: Entry) -> str:
    """e.g. "alice · finetune demo-lora · 43 % · ETA 2m10s"."""
    parts = [entry.user, f"{entry.kind} {entry.name}"]
    if entry.progress is not None:
        parts.append(f"{entry.progress:.0%}")
    if entry.eta_s is not None:
        parts.append(f"ETA {duration(entry.eta_s)}")
    return " · ".join(parts)


def _who(entry: Entry, my_uid: int | None) -> str:
    return "you" if entry.uid == my_uid else entry.user


def holders_line(view: QueueView, my_uid: int | None = None) -> str:
    """Who holds which device, for a status line, e.g. "GPU 0: alice demo-lora ETA 2m10s"; "" if nobody."""
    parts = []
    for slot, holders in view.slots:
        for entry in holders:
            eta = f" ETA {duration(entry.eta_s)}" if entry.eta_s is not None else ""
            parts.append(f"{slot.label}: {_who(entry, my_uid)} {entry.name}{eta}")
    return " · ".join(parts)


def queue_line(view: QueueView, my_uid: int) -> str:
    """The queue of every user as one line, yours marked with its position; "" when nobody waits or runs."""
    held = holders_line(view, my_uid)
    waiting = ", ".join(f"#{i} {_who(e, my_uid)} {e.name}" for i, e in enumerate(view.waiting, start=1))
    parts = [f"running {held}" if held else "", f"waiting {waiting}" if waiting else ""]
    text = "; ".join(p for p in parts if p)
    return f"GPU queue ({'shared' if view.folder.shared else 'this workspace'}): {text}" if text else ""


def _memory(slot: Slot) -> str:
    if slot.total_bytes is None:
        return "-"
    used = slot.total_bytes - slot.free_bytes if slot.free_bytes is not None else None
    return f"{human_bytes(used) if used is not None else '?'} / {human_bytes(slot.total_bytes)}"


def view_text(view: QueueView) -> str:
    window_h = view.folder.policy.fair_window_s / 3600
    where = "shared by every user of this machine" if view.folder.shared else "this workspace only"
    slot_rows = [
        [
            slot.label,
            slot.name,
            _memory(slot),
            "-" if slot.utilisation_pct is None else f"{slot.utilisation_pct} %",
            "; ".join(holder_text(e) for e in holders) or "free",
        ]
        for slot, holders in view.slots
    ]
    lines = [table(["DEVICE", "NAME", "MEMORY USED", "UTIL", "HELD BY"], slot_rows), ""]
    lines.append(f"queue ({where}; next: the user with the least GPU time in the last {window_h:g} h):")
    if not view.waiting:
        lines.append("  nobody is waiting")
    else:
        rows = [
            [
                str(i),
                e.user,
                e.name,
                str(e.gpus),
                duration(_waited(e)),
                f"{view.usage.get(e.user, 0.0) / 3600:.2f} h",
                e.id,
            ]
            for i, e in enumerate(view.waiting, start=1)
        ]
        lines.append(table(["#", "USER", "JOB", "GPUS", "WAITING", "GPU TIME", "ID"], rows))
    return "\n".join(lines)


def view_json(view: QueueView) -> str:
    return json.dumps(
        {
            "shared": view.folder.shared,
            "folder": str(view.folder.path),
            "fair_window_hours": view.folder.policy.fair_window_s / 3600,
            "devices": [_slot_json(slot, holders) for slot, holders in view.slots],
            "waiting": [{**_entry_json(e), "position": i} for i, e in enumerate(view.waiting, start=1)],
            "gpu_hours": {user: round(s / 3600, 4) for user, s in view.usage.items()},
        },
        indent=2,
    )


def _slot_json(slot: Slot, holders: list[Entry]) -> dict[str, Any]:
    return {
        "id": slot.id,
        "index": slot.index,
        "name": slot.name,
        "total_bytes": slot.total_bytes,
        "free_bytes": slot.free_bytes,
        "utilisation_pct": slot.utilisation_pct,
        "held_by": [_entry_json(e) for e in holders],
    }


def _entry_json(entry: Entry) -> dict[str, Any]:
    keys = ("id", "user", "kind", "name", "gpus", "state", "queued_at", "started_at", "devices", "progress", "eta_s")
    return {key: getattr(entry, key) for key in keys}


def _waited(entry: Entry) -> float:
    import time

    return max(0.0, time.time() - entry.queued_at)
