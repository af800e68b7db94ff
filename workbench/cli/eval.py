"""`workbench eval ...` (prompt suites as a gate) and `workbench chat` (one streamed answer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.cli.context import Context, pass_context

if TYPE_CHECKING:
    from services.chat.session import Answer, ChatEngine
    from services.chat.variant import Variant


def chat_engine(obj: Context, *, typed: Variant | None = None) -> ChatEngine:
    """The engine with the endpoints the user trusts; `typed`: a variant the user gave on the command
    line, whose endpoint and key variable are theirs to trust."""
    endpoints = obj.services.chat_endpoints()
    if typed is not None:
        endpoints = endpoints.allowing(typed.endpoint, typed.api_key_env)
    return obj.services.chat_engine(endpoints)


@click.group("eval")
def eval_() -> None:
    """Prompt suites: cases x variants with assertions, stored runs, regressions between runs."""


@eval_.command("run")
@click.argument("suite_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--variant", "variants", multiple=True, help="Run only this variant (repeatable).")
@click.option(
    "--junit", "junit_file", type=click.Path(path_type=Path, dir_okay=False), help="Write a JUnit XML report."
)
@click.option("--json", "json_file", type=click.Path(path_type=Path, dir_okay=False), help="Write the run as JSON.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@pass_context
def eval_run(
    obj: Context,
    suite_file: Path,
    variants: tuple[str, ...],
    junit_file: Path | None,
    json_file: Path | None,
    quiet: bool,
) -> None:
    """Run SUITE_FILE; exit 0 when every assertion passes, 1 when one fails, 2 when the suite is invalid
    or a variant would send a key to an endpoint not in [chat.endpoints] of your user settings."""
    from services.evals.junit import to_junit
    from services.evals.runner import run_suite
    from services.evals.runs import save_run
    from services.evals.suite import load_suite
    from workbench.present import eval as render_eval

    suite = load_suite(suite_file)
    engine = chat_engine(obj)
    progress = None if quiet else (lambda r: click.echo(render_eval.result_line(r), err=True))
    try:
        run = run_suite(suite, engine=engine, variants=list(variants) or None, on_result=progress)
    finally:
        engine.close()
    save_run(obj.services.store(), run)
    click.echo(render_eval.matrix_text(run))
    if junit_file is not None:
        junit_file.write_text(to_junit(run))
    if json_file is not None:
        json_file.write_text(render_eval.run_json(run) + "\n")
    sys.exit(0 if run.passed else 1)


@eval_.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: regressions, fixes, new, missing, input changes.")
@pass_context
def eval_compare(obj: Context, run_a: str, run_b: str, as_json: bool) -> None:
    """List regressions (passed in RUN_A, failed in RUN_B), fixes, new and missing cases."""
    from services.evals.compare import compare_runs
    from services.evals.runs import load_run
    from workbench.present import eval as render_eval

    store = obj.services.store()
    cmp = compare_runs(load_run(store, run_a), load_run(store, run_b))
    click.echo(render_eval.comparison_json(cmp) if as_json else render_eval.comparison_text(cmp))


@eval_.command("ls")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {id, suite, started, passed, failed}.")
@pass_context
def eval_ls(obj: Context, limit: int, as_json: bool) -> None:
    """Stored suite runs, newest first."""
    from services.evals.runs import list_runs
    from workbench.present import eval as render_eval

    runs = list_runs(obj.services.store(), limit=limit)
    click.echo(render_eval.runs_json(runs) if as_json else render_eval.runs_table(runs))


@click.command("chat")
@click.argument("question")
@click.option("--model", help="HF cache repo id or folder (local); model name (endpoint). Default: the demo model.")
@click.option("--revision", help="Model revision in the HF cache (default: main).")
@click.option("--adapter", type=click.Path(path_type=Path, file_okay=False), help="PEFT adapter folder (unmerged).")
@click.option("--4bit", "load_4bit", is_flag=True, help="Load the model in 4-bit (CUDA only).")
@click.option("--endpoint", help="OpenAI-compatible base URL, e.g. http://host:8000/v1, or a [chat.endpoints] name.")
@click.option("--api-key-env", help="Environment variable holding the endpoint's API key.")
@click.option("--collection", help="RAG: answer with chunks from this Chroma collection.")
@click.option("-k", "k", type=click.IntRange(1, 100), default=4, show_default=True, help="RAG: chunks to retrieve.")
@click.option("--system", "system_prompt", default="", help="System prompt.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=128, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--show-prompt", is_flag=True, help="Print the exact prompt sent (on stderr).")
@pass_context
def chat(obj: Context, /, question: str, show_prompt: bool, **options: Any) -> None:
    """Ask QUESTION once: the answer streams to stdout; latency, tokens/s and retrieved chunks to stderr."""
    from services.chat.session import Answer

    variant = chat_variant(**options)
    engine = chat_engine(obj, typed=variant)
    answer: Answer | None = None
    for item in engine.stream(variant, question):
        if isinstance(item, Answer):
            answer = item
        else:
            click.echo(item, nl=False)
    engine.close()
    click.echo()
    assert answer is not None  # the stream always ends with one
    _chat_report(answer, show_prompt)


def _chat_report(answer: Answer, show_prompt: bool) -> None:
    from services.errors import ChatBackendError
    from workbench.present import eval as render

    if answer.hits:
        click.echo("retrieved:\n" + render.hits_text(answer), err=True)
    if show_prompt:
        click.echo("prompt sent:\n" + answer.prompt, err=True)
    if answer.error:
        raise ChatBackendError(answer.error)
    click.echo(render.answer_stats(answer), err=True)


def chat_variant(
    *,
    model: str | None,
    revision: str | None,
    adapter: Path | None,
    load_4bit: bool,
    endpoint: str | None,
    api_key_env: str | None,
    collection: str | None,
    k: int,
    system_prompt: str,
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> Variant:
    """The variant the `chat` options describe (UsageError when they contradict each other)."""
    from pydantic import ValidationError

    from services.chat.variant import Variant
    from services.demo import DEMO_MODEL
    from services.errors import UsageError

    data: dict[str, Any] = {
        "name": "chat",
        "backend": "openai" if endpoint else "local",
        "model": model or (None if endpoint else DEMO_MODEL),
        "revision": revision,
        "adapter": str(adapter) if adapter else None,
        "load_4bit": load_4bit,
        "endpoint": endpoint,
        "api_key_env": api_key_env,
        "system_prompt": system_prompt,
        "rag": {"collection": collection, "k": k} if collection else None,
        "params": {"max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed},
    }
    try:
        return Variant.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise UsageError(f"chat options: {reasons}") from None
