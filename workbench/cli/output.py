"""What the CLI shows and asks, shared by every command group: progress while long work runs, and
confirmations that are asked only on a terminal (a script must say yes in an option, or nothing happens)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from services.errors import UsageError

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


def confirm(question: str, *, yes: bool, refusal: str) -> None:
    """Go on when `yes` was passed; else ask on a terminal (no: abort), and without one refuse with `refusal`."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(refusal, hint="pass --yes")
    click.confirm(question, abort=True)


def confirm_typed(question: str, expected: str, *, typed: str | None, refusal: str) -> None:
    """Go on only when `expected` was typed: in `--yes-i-typed`, or at a terminal prompt; else refuse."""
    if typed is None:
        if not sys.stdin.isatty():
            raise UsageError(refusal, hint=f"pass --yes-i-typed {expected}")
        typed = click.prompt(question)
    if typed != expected:
        raise UsageError(f"'{typed}' is not '{expected}': nothing was done", hint="type the name exactly")


def ask(question: str) -> bool:
    """A yes/no question asked mid-way (default no); without a terminal the answer is no, said on stderr."""
    if not sys.stdin.isatty():
        click.echo(f"{question} (not asked without a terminal: no)", err=True)
        return False
    return click.confirm(question, default=False)
