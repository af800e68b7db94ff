"""Text and JSON renderings of suite runs, comparisons and chat statistics for the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.chat.session import Answer
    from services.evals.compare import Comparison
    from services.evals.runner import CaseResult, EvalRun
    from services.evals.runs import RunSummary


def result_line(result: CaseResult) -> str:
    """One progress line as a cell finishes."""
    verdict = "pass" if result.passed else "FAIL"
    return f"{verdict}  {result.case} x {result.variant}  ({result.answer.latency_s:.2f} s)"


def matrix_text(run: EvalRun) -> str:
    """Cases down, variants across, pass/FAIL in the cells; then every failure with its answer."""
    cases = list(dict.fromkeys(r.case for r in run.results))
    variants = list(dict.fromkeys(r.variant for r in run.results))
    cells = {(r.case, r.variant): r for r in run.results}
    width = max([len("case"), *map(len, cases)])
    columns = [max(len(v), 4) for v in variants]
    lines = ["  ".join(["case".ljust(width), *(v.ljust(w) for v, w in zip(variants, columns, strict=True))])]
    for case in cases:
        marks = [_mark(cells.get((case, v))).ljust(w) for v, w in zip(variants, columns, strict=True)]
        lines.append("  ".join([case.ljust(width), *marks]).rstrip())
    passed, failed = run.counts()
    lines += ["", f"run {run.id}: {passed} passed, {failed} failed"]
    return "\n".join(lines + _failure_details(run.results))


def _mark(result: CaseResult | None) -> str:
    if result is None:
        return "-"
    return "pass" if result.passed else "FAIL"


def _failure_details(results: list[CaseResult]) -> list[str]:
    lines = []
    for result in (r for r in results if not r.passed):
        lines += ["", f"FAIL {result.case} x {result.variant}"]
        lines += [f"  - {failure}" for failure in result.failures]
        lines.append(f"  answer: {json.dumps(_short(result.answer.text), ensure_ascii=False)}")
    return lines


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_dict(run: EvalRun) -> dict[str, Any]:
    from services.evals.runs import result_to_dict

    passed, failed = run.counts()
    results = [result_to_dict(r) for r in run.results]
    return {"id": run.id, "suite": run.suite, "started": run.started, "passed": passed, "failed": failed} | {
        "inputs": run.inputs,
        "results": results,
    }


def run_json(run: EvalRun) -> str:
    return json.dumps(run_dict(run), indent=2, ensure_ascii=False)


def runs_table(runs: list[RunSummary]) -> str:
    if not runs:
        return "no stored eval runs (run a suite with `workbench eval run SUITE.yaml`)"
    rows = [("id", "started", "passed", "failed", "suite")]
    rows += [(r.id, r.started, str(r.passed), str(r.failed), r.suite) for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]]) for row in rows)


def runs_json(runs: list[RunSummary]) -> str:
    from dataclasses import asdict

    return json.dumps([asdict(r) for r in runs], indent=2)


def comparison_text(cmp: Comparison) -> str:
    """Regressions first (with B's failures), then fixes, new and missing cells, and input changes."""
    lines = [f"compare {cmp.a} -> {cmp.b}"]
    sections = [("regressions", cmp.regressions), ("fixes", cmp.fixes), ("new", cmp.new), ("missing", cmp.missing)]
    for title, cells in sections:
        lines.append(f"{title}: {len(cells)}")
        for cell in cells:
            lines.append(f"  {cell[0]} x {cell[1]}")
            if title == "regressions":
                lines += [f"    - {f}" for f in cmp.failures_b.get(cell, [])]
    lines.append(f"still failing: {len(cmp.still_failing)}, still passing: {cmp.unchanged_passing}")
    if cmp.input_changes:
        lines += ["inputs changed:", *(f"  {change}" for change in cmp.input_changes)]
    return "\n".join(lines)


def comparison_json(cmp: Comparison) -> str:
    def cells(items: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"case": case, "variant": variant} for case, variant in items]

    data = {
        "a": cmp.a,
        "b": cmp.b,
        "regressions": cells(cmp.regressions),
        "fixes": cells(cmp.fixes),
        "new": cells(cmp.new),
        "missing": cells(cmp.missing),
        "still_failing": cells(cmp.still_failing),
        "unchanged_passing": cmp.unchanged_passing,
        "input_changes": cmp.input_changes,
    }
    return json.dumps(data, indent=2)


def answer_stats(answer: Answer) -> str:
    """The numbers after an answer: latency, time to first token, tokens and tokens/s."""
    ttft = f"{answer.ttft_s:.2f} s" if answer.ttft_s is not None else "-"
    return (
        f"latency {answer.latency_s:.2f} s, first token {ttft}, "
        f"{answer.tokens} tokens, {answer.tokens_per_s:.1f} tokens/s"
    )


def hits_text(answer: Answer) -> str:
    """The retrieved chunks, one line each: rank, distance, source and chunk index."""
    return "\n".join(
        f"[{n}] {hit.distance:.3f} {hit.source}#{hit.chunk_index}" for n, hit in enumerate(answer.hits, start=1)
    )
