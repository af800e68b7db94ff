"""Running a suite: every case against every chosen variant; a failing case never stops the run."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.chat.session import Answer, ChatEngine, collect
from services.chat.variant import Variant, fill
from services.errors import UsageError
from services.evals.assertions import Assertion, Embed, Embedder, check
from services.evals.suite import Case, Suite
from services.progress import CancelToken


@dataclass
class CaseResult:
    """One cell of the matrix: a case answered by a variant, and the assertions it failed."""

    case: str
    variant: str
    passed: bool
    answer: Answer
    failures: list[str]


@dataclass
class EvalRun:
    """A suite run with the versions of its inputs (model revisions, adapters, collections)."""

    id: str
    suite: str
    started: str
    results: list[CaseResult]
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def counts(self) -> tuple[int, int]:
        """(passed, failed) cells."""
        passed = sum(r.passed for r in self.results)
        return passed, len(self.results) - passed


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def run_suite(
    suite: Suite,
    *,
    engine: ChatEngine,
    variants: list[str] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
    cancel: CancelToken | None = None,
    embed: Embed | None = None,
) -> EvalRun:
    """Answer every case with every chosen variant and check its assertions.

    Raises `UntrustedEndpointError` before any request when a variant would send a key to an
    endpoint the engine's policy does not trust.
    """
    chosen = trusted_variants(suite, choose_variants(suite, variants), engine)
    embed = embed or Embedder(cache_dir=engine.cache_dir)
    run = EvalRun(new_run_id(), str(suite.path), _now(), [], suite_inputs(suite, list(chosen.values()), engine))
    for case in suite.cases:
        for variant in (chosen[v.name] for v in suite.variants_of(case) if v.name in chosen):
            if cancel is not None and cancel.cancelled:
                return run
            result = run_case(suite, case, variant, engine=engine, embed=embed, cancel=cancel)
            run.results.append(result)
            if on_result is not None:
                on_result(result)
    return run


def trusted_variants(suite: Suite, variants: list[Variant], engine: ChatEngine) -> dict[str, Variant]:
    """The variants by name with named endpoints resolved; refuses the whole suite if one is untrusted."""
    label = f"{suite.path}: suite variant"
    return {v.name: engine.endpoints.resolve(v, label=f"{label} {v.name!r}") for v in variants}


def choose_variants(suite: Suite, names: list[str] | None) -> list[Variant]:
    if not names:
        return list(suite.variants)
    known = {v.name for v in suite.variants}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown variant {', '.join(unknown)} in {suite.path}", hint=f"choose from {sorted(known)}")
    return [v for v in suite.variants if v.name in names]


def run_case(
    suite: Suite,
    case: Case,
    variant: Variant,
    *,
    engine: ChatEngine,
    embed: Embed,
    cancel: CancelToken | None = None,
) -> CaseResult:
    """Ask one case with one variant; errors become the result's failure, never an exception."""
    values = {k: v for k, v in case.text_vars().items() if k not in {"question", "context"}}
    question = fill(case.question, values)
    if values:
        variant = variant.model_copy(update={"template": fill(variant.template, values)})
    try:
        answer = collect(engine.stream(variant, question, cancel=cancel))
    except Exception as exc:  # the engine reports errors in its answer; this is the last line of defence
        answer = Answer("", "", [], 0.0, None, 0, 0.0, f"{type(exc).__name__}: {exc}")
    failures = evaluate([*suite.default_asserts, *case.asserts], answer, reference=case.reference, embed=embed)
    return CaseResult(case.name, variant.name, not failures, answer, failures)


def evaluate(asserts: list[Assertion], answer: Answer, *, reference: str | None, embed: Embed) -> list[str]:
    """Failure texts for an answer; an answer that carries an error fails with that error alone."""
    if answer.error is not None:
        return [f"error: {answer.error}"]
    failures = []
    for assertion in asserts:
        try:
            failure = check(assertion, answer, reference=reference, embed=embed)
        except Exception as exc:  # e.g. the embedding model is missing: this assertion fails
            failure = f"{assertion.describe()}: could not check ({exc})"
        if failure is not None:
            failures.append(failure)
    return failures


def suite_inputs(suite: Suite, variants: list[Variant], engine: ChatEngine) -> dict[str, Any]:
    """What the results depend on: the suite file's hash and each variant's settings and versions."""
    try:
        digest = hashlib.sha256(suite.path.read_bytes()).hexdigest()[:12]
    except OSError:
        digest = None
    described = {
        v.name: {**engine.describe(v), "settings": v.model_dump(mode="json", exclude_defaults=True)} for v in variants
    }
    return {"suite_sha256": digest, "variants": described}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
