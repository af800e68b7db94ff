"""Helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_of(runs: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(runs))


def report(name: str, ours: float, peer: float, unit: str, *, goal: str, higher_is_better: bool) -> None:
    """Print one line: both figures and the ratio ours/peer against the issue's goal."""
    ratio = ours / peer if peer else float("inf")
    better = "higher" if higher_is_better else "lower"
    figures = f"workbench {ours:.3f} {unit} vs peer {peer:.3f} {unit}"
    print(f"{name}: {figures} -> ratio {ratio:.2f} ({better} is better; goal {goal})")
