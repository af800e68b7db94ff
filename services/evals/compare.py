"""Comparing two suite runs: regressions (passed in A, failed in B), fixes, and cells only one run has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.evals.runner import CaseResult, EvalRun

Cell = tuple[str, str]  # (case, variant)


@dataclass(frozen=True)
class Comparison:
    """What changed between run `a` and run `b`; `input_changes` says which inputs moved."""

    a: str
    b: str
    regressions: list[Cell] = field(default_factory=list)
    fixes: list[Cell] = field(default_factory=list)
    new: list[Cell] = field(default_factory=list)
    missing: list[Cell] = field(default_factory=list)
    still_failing: list[Cell] = field(default_factory=list)
    unchanged_passing: int = 0
    input_changes: list[str] = field(default_factory=list)
    failures_b: dict[Cell, list[str]] = field(default_factory=dict)


def compare_runs(a: EvalRun, b: EvalRun) -> Comparison:
    """Regressions and fixes by (case, variant), plus the inputs whose versions differ."""
    cells_a, cells_b = _cells(a), _cells(b)
    both = [cell for cell in cells_b if cell in cells_a]
    return Comparison(
        a=a.id,
        b=b.id,
        regressions=[c for c in both if cells_a[c].passed and not cells_b[c].passed],
        fixes=[c for c in both if not cells_a[c].passed and cells_b[c].passed],
        new=[c for c in cells_b if c not in cells_a],
        missing=[c for c in cells_a if c not in cells_b],
        still_failing=[c for c in both if not cells_a[c].passed and not cells_b[c].passed],
        unchanged_passing=sum(cells_a[c].passed and cells_b[c].passed for c in both),
        input_changes=input_changes(a.inputs, b.inputs),
        failures_b={c: r.failures for c, r in cells_b.items() if not r.passed},
    )


def _cells(run: EvalRun) -> dict[Cell, CaseResult]:
    return {(r.case, r.variant): r for r in run.results}


def input_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """`key: old -> new` for every leaf of the inputs that differs."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    keys = sorted(set(flat_a) | set(flat_b))
    return [f"{k}: {flat_a.get(k)!r} -> {flat_b.get(k)!r}" for k in keys if flat_a.get(k) != flat_b.get(k)]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat |= _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return flat
