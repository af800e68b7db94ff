"""What the CLI prints while long work runs (shared by every command group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from services.progress import TransferProgress


def progress_printer(label: str) -> Callable[[TransferProgress], None]:
    """A one-line progress bar on stderr with bytes/s and ETA."""
    from services.units import human_bytes

    def show(p: TransferProgress) -> None:
        bar = "#" * int(p.fraction * 30)
        eta = f"ETA {p.eta_s:.0f} s" if p.eta_s is not None else ""
        line = (
            f"\r{label} [{bar:<30}] {p.fraction:4.0%} {human_bytes(p.done_bytes)}/{human_bytes(p.total_bytes)} "
            f"{human_bytes(p.bytes_per_s)}/s {eta}"
        )
        click.echo(line.ljust(100), err=True, nl=p.done_bytes >= p.total_bytes)

    return show
