"""Messages that cross modes or reach the app shell. Widget-local messages nest in their widget."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class OpenAdapter(Message):
    """Chat with a fine-tune job's adapter: the Playground compares the base (A) with base + adapter (B)."""

    base_model: str
    adapter: Path
