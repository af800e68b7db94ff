"""The `workbench` command: every action the TUI offers, as a subcommand that scripts and CI drive.

Exit codes: 0 ok, 1 the operation failed (not found, no access, no disk), 2 usage or configuration.
Heavy libraries load inside the commands that need them, never at import.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, NoReturn

import click

from services.errors import WorkbenchError
from workbench.cli.context import Context, pass_context
from workbench.cli.output import confirm, progress_printer
from workbench.cli.steps import hint_lines

LAZY_COMMANDS = {
    "artifacts": "workbench.cli.artifacts:artifacts",
    "chat": "workbench.cli.eval:chat",
    "deploy": "workbench.cli.deploy:deploy",
    "eval": "workbench.cli.eval:eval_",
    "finetune": "workbench.cli.finetune:finetune",
    "gpu": "workbench.cli.gpu:gpu",
    "image": "workbench.cli.image:image",
    "infra": "workbench.cli.infra:infra",
    "rag": "workbench.cli.rag:rag",
    "rollback": "workbench.cli.deploy:rollback",
    "server": "workbench.cli.gpu:server",
    "status": "workbench.cli.deploy:status",
    "trust": "workbench.cli.trust:trust",
}
"""Command groups kept in their own modules: `module:attribute`, imported when the command is looked up."""


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's subcommands by name; a `module:attribute` entry is imported on first lookup, so running one
    command loads only its own module (`--help` lists them all, and so loads them all)."""

    def __init__(self, targets: dict[str, str]) -> None:
        self._entries: dict[str, str | click.Command] = dict(targets)

    def __getitem__(self, name: str) -> click.Command:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, attribute = entry.split(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), attribute)
        return entry

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class WorkbenchGroup(click.Group):
    """Maps workbench errors to exit codes and one-line messages (tracebacks only with --debug)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(LAZY_COMMANDS)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            if ctx.find_object(Context) and ctx.find_object(Context).debug:  # type: ignore[union-attr]
                raise
            fail(exc)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def fail(exc: WorkbenchError) -> NoReturn:
    """Print the error, its hint and its next step (as a `workbench …` command), then exit with its code."""
    click.echo(f"error: {exc.message}", err=True)
    for line in hint_lines(exc.hint, exc.step):
        click.echo(line, err=True)
    sys.exit(exc.exit_code)


@click.group(cls=WorkbenchGroup, invoke_without_command=True)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Project settings file (default: ./workbench.toml).",
)
@click.version_option(package_name="llm-workbench")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_file: Path | None) -> None:
    """LLM Workbench: models, fine-tunes, RAG, images, deploys and infra in one terminal app.

    Run without a command to open the terminal UI.
    """
    # Tests hand in their own composition root: `runner.invoke(cli, args, obj=Services(...))`.
    ctx.obj = Context(debug, config_file, services=ctx.obj)
    if ctx.invoked_subcommand is None:
        # Start-up makes objects that live as long as the app (modules, classes, styles): collections
        # during it free nothing and cost ~50 ms. The app turns the collector back on at its first frame.
        gc.disable()
        from workbench.tui.app import run_app

        run_app(ctx.obj.reload)


# ---------------------------------------------------------------- config


@cli.group()
def config() -> None:
    """Inspect settings."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {key: {value, source}}.")
@pass_context
def config_show(obj: Context, as_json: bool) -> None:
    """Print the effective settings and where each value came from (secrets as set/unset)."""
    from workbench.settings import effective_rows

    settings, layers = obj.loaded()
    rows = effective_rows(settings, layers)
    if as_json:
        click.echo(json.dumps({key: {"value": value, "source": source} for key, value, source in rows}, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        click.echo(f"{key:<{width}}  {json.dumps(value)}  [{source}]")


# ---------------------------------------------------------------- models


@cli.group()
def models() -> None:
    """Search the hub, inspect fit, download and manage cached models."""


SORTS = ["downloads", "likes", "trending", "modified"]


@models.command("search")
@click.argument("query", default="")
@click.option("--task", help="Pipeline tag, e.g. text-generation.")
@click.option("--library", help="Library, e.g. transformers, peft, gguf.")
@click.option("--license", "license_", help="Licence id, e.g. apache-2.0.")
@click.option("--gated/--not-gated", default=None, help="Only gated (or only open) models.")
@click.option("--sort", type=click.Choice(SORTS), default="downloads", show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of models.")
@pass_context
def models_search(
    obj: Context,
    query: str,
    task: str | None,
    library: str | None,
    license_: str | None,
    gated: bool | None,
    sort: str,
    limit: int,
    as_json: bool,
) -> None:
    """Search the hub for QUERY (substring of the model id)."""
    from services.hub.search import search_models
    from workbench.present import models as render

    pager = search_models(
        obj.hub(),
        query,
        task=task,
        library=library,
        license=license_,
        gated=gated,
        sort=sort,  # type: ignore[arg-type]
        page_size=limit,
    )
    found = pager.next_page()
    click.echo(render.summaries_json(found) if as_json else render.summaries_table(found))


@models.command("info")
@click.argument("repo_id")
@click.option("--revision", help="Branch, tag or commit (default: main).")
@click.option("--seq-len", type=click.IntRange(1), help="Sequence length for the fit estimate.")
@click.option("--batch-size", type=click.IntRange(1), help="Micro-batch for the fit estimate.")
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON including the fit estimate.")
@pass_context
def models_info(
    obj: Context,
    repo_id: str,
    revision: str | None,
    seq_len: int | None,
    batch_size: int | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show a model's files, download size, parameters, licence, access and fit on this machine."""
    from services.fit import Workload
    from services.hub.details import model_details
    from workbench.present import models as render

    details = model_details(obj.hub(), repo_id, revision=revision, include=include, exclude=exclude)
    fit_settings = obj.settings.models
    work = Workload(seq_len=seq_len or fit_settings.fit_seq_len, batch_size=batch_size or fit_settings.fit_batch_size)
    fit = render.fit_for(details, work)
    click.echo(render.details_json(details, fit) if as_json else render.details_text(details, fit))


@models.command("download")
@click.argument("repo_id")
@click.option("--revision", help="Branch, tag or commit to pin (default: main).")
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_context
def models_download(
    obj: Context,
    repo_id: str,
    revision: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    quiet: bool,
) -> None:
    """Download a model into the HF cache (resumes an interrupted download; refuses when disk is short)."""
    from services.units import human_bytes
    from workbench.usecases.models import download

    result = download(
        obj.services,
        repo_id,
        revision=revision,
        include=include,
        exclude=exclude,
        on_progress=None if quiet else progress_printer(repo_id),
    )
    rate = result.fetched_bytes / result.seconds if result.seconds else 0.0
    click.echo(
        f"{result.repo_id}@{result.revision[:12]}: {len(result.files)} files, "
        f"{human_bytes(result.fetched_bytes)} fetched in {result.seconds:.1f} s "
        f"({human_bytes(rate)}/s) -> {result.path}"
    )


@models.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of cached models.")
@pass_context
def models_ls(obj: Context, as_json: bool) -> None:
    """List models in the local HF cache (also those the `hf` CLI downloaded)."""
    from services.cache import list_cached_models
    from workbench.present import models as render

    listing = list_cached_models(obj.cache_dir())
    click.echo(render.cache_json(listing) if as_json else render.cache_table(listing))
    for warning in listing.warnings:
        click.echo(f"warning: {warning}", err=True)


@models.command("rm")
@click.argument("repo_id")
@click.option("--revision", help="Delete only this revision (commit, prefix or ref).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def models_rm(obj: Context, repo_id: str, revision: str | None, yes: bool) -> None:
    """Delete a cached model, or one revision of it."""
    from services.cache import delete_cached_model
    from services.units import human_bytes

    what = f"{repo_id}@{revision}" if revision else f"{repo_id} (all revisions)"
    confirm(
        f"Delete {what} from {obj.cache_dir()}?", yes=yes, refusal=f"refusing to delete {what} without confirmation"
    )
    freed = delete_cached_model(obj.cache_dir(), repo_id, revision=revision)
    click.echo(f"deleted {what}: {human_bytes(freed)} freed")


# ---------------------------------------------------------------- demo


@cli.group()
def demo() -> None:
    """The demo workspace: tiny real things for every mode, offline."""


@demo.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print what was made as JSON.")
@pass_context
def demo_init(obj: Context, as_json: bool) -> None:
    """Create the demo model, embedding model, dataset and documents (idempotent, offline)."""
    from workbench.usecases.models import init_demo

    made = init_demo(obj.services)
    if as_json:
        click.echo(made.to_json())
        return
    click.echo(f"model            {made.model}  ({made.model_path})")
    click.echo(f"embedding model  {made.embedding_model}  ({made.embedding_model_path})")
    click.echo(f"dataset          {made.dataset}")
    click.echo(f"documents        {made.documents}")
    click.echo(f"fine-tune job    {made.finetune_job}")
    click.echo(f"prompt suite     {made.suite}")
    click.echo("created: " + (", ".join(made.created) if made.created else "nothing (already in place)"))


def main() -> None:
    cli(prog_name="workbench")
