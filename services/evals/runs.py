"""Stored suite runs (table `eval_runs`): each with its inputs' versions, so two runs can be compared."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from services.artifacts.evals import attach_run
from services.chat.session import Answer
from services.errors import NextStep, NotFoundError, UsageError
from services.evals.runner import CaseResult, EvalRun
from services.store import Store


@dataclass(frozen=True)
class RunSummary:
    """A stored run without its results, for listings."""

    id: str
    suite: str
    started: str
    passed: int
    failed: int


def save_run(store: Store, run: EvalRun) -> None:
    """Store a run (replacing one with the same id)."""
    store.migrate()
    passed, failed = run.counts()
    results = json.dumps([result_to_dict(r) for r in run.results], ensure_ascii=False)
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO eval_runs (id, suite, started, passed, failed, inputs, results)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run.id, run.suite, run.started, passed, failed, json.dumps(run.inputs, sort_keys=True), results),
        )
    attach_run(store, run.id, run.inputs)


def load_run(store: Store, run_id: str) -> EvalRun:
    """A stored run by id or unique id prefix."""
    store.migrate()
    with store.connect() as db:
        rows = db.execute("SELECT * FROM eval_runs WHERE id LIKE ? ORDER BY id", (run_id + "%",)).fetchall()
    if not rows:
        raise NotFoundError(f"no stored eval run '{run_id}'", step=NextStep("eval.ls"))
    exact = [r for r in rows if r["id"] == run_id]
    if len(rows) > 1 and not exact:
        raise UsageError(f"eval run prefix '{run_id}' matches {len(rows)} runs", hint="give more of the id")
    row = (exact or rows)[0]
    results = [result_from_dict(d) for d in json.loads(row["results"])]
    return EvalRun(row["id"], row["suite"], row["started"], results, json.loads(row["inputs"]))


def list_runs(store: Store, *, limit: int = 50) -> list[RunSummary]:
    """Newest runs first."""
    store.migrate()
    with store.connect() as db:
        rows = db.execute(
            "SELECT id, suite, started, passed, failed FROM eval_runs ORDER BY started DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
    return [RunSummary(r["id"], r["suite"], r["started"], r["passed"], r["failed"]) for r in rows]


def result_to_dict(result: CaseResult) -> dict[str, Any]:
    answer = asdict(result.answer)  # hits (dataclasses) become dicts too
    return {"case": result.case, "variant": result.variant, "passed": result.passed, "failures": result.failures} | {
        "answer": answer
    }


def result_from_dict(data: dict[str, Any]) -> CaseResult:
    answer = dict(data["answer"])
    answer["hits"] = [_hit(h) for h in answer.get("hits", [])]
    return CaseResult(data["case"], data["variant"], data["passed"], Answer(**answer), list(data["failures"]))


def _hit(data: dict[str, Any]) -> Any:
    from services.rag.types import Hit

    return Hit(**data)
