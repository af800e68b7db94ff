"""Messages that cross modes or reach the app shell. Widget-local messages nest in their widget."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class WorkerFailed(Message):
    """A background worker raised; the app turns this into one notification."""

    description: str
    """What the worker was doing, e.g. "Search the hub"."""
    error: BaseException


@dataclass
class CacheChanged(Message):
    """The HF cache changed (download, delete, demo init): listings of it should reload."""
