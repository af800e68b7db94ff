"""`workbench artifacts ...`: versions with lineage and labels, in the workspace and in remote storage.

REF is `NAME`, `NAME@VERSION` or `NAME:LABEL`; NAME alone means the newest version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from services.errors import UsageError
from workbench.cli.context import Context, pass_context
from workbench.cli.output import confirm, progress_printer

if TYPE_CHECKING:
    from services.artifacts.catalog import Catalog
    from services.artifacts.model import Ref
    from services.artifacts.workspace import Artifacts

KINDS = ["adapter", "merged-model", "dataset", "collection"]
REMOTE = click.option("--remote", is_flag=True, help="Remote storage (Azure Blob Storage or artifacts.remote_dir).")


@click.group()
def artifacts() -> None:
    """Adapters, merged models, datasets and collections: versions, lineage, labels, push and pull."""


def _artifacts(obj: Context) -> Artifacts:
    return obj.services.artifacts()


def _ref(text: str) -> Ref:
    from services.artifacts.model import parse_ref

    return parse_ref(text)


def _where(catalog: Catalog) -> str:
    return catalog.storage.description if catalog.where == "remote" else "the workspace"


@artifacts.command("ls")
@REMOTE
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of versions.")
@pass_context
def artifacts_ls(obj: Context, remote: bool, kind: str | None, as_json: bool) -> None:
    """List versions, newest first, with labels and size (finished fine-tunes register themselves here)."""
    from workbench.present import artifacts as render_artifacts
    from workbench.usecases.artifacts import list_versions

    listing = list_versions(obj.services, remote=remote, kind=kind)
    infos = listing.versions
    click.echo(
        render_artifacts.versions_json(infos)
        if as_json
        else render_artifacts.versions_table(infos, _where(listing.catalog))
    )
    for error in listing.refused:
        click.echo(f"warning: skipped: {error}", err=True)


@artifacts.command("show")
@click.argument("ref")
@REMOTE
@click.option("--json", "as_json", is_flag=True, help="Print JSON with lineage, files and eval runs.")
@pass_context
def artifacts_show(obj: Context, ref: str, remote: bool, as_json: bool) -> None:
    """One version: size, labels, lineage (base model, dataset, job, git), the eval runs that tested it, files."""
    from services.artifacts.evals import evals_for
    from workbench.present import artifacts as render_artifacts

    arts = _artifacts(obj)
    catalog = arts.catalog(remote=remote)
    info = catalog.info(_ref(ref))
    evals = evals_for(arts.store, info.manifest.name, info.manifest.version)
    click.echo(
        render_artifacts.show_json(info, evals) if as_json else render_artifacts.show_text(info, evals, _where(catalog))
    )


@artifacts.command("add")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("source")
@click.option("--name", help="Artifact name (default: from the source).")
@click.option("--version", help="Version (default: a UTC timestamp; for adapters the job id).")
@pass_context
def artifacts_add(obj: Context, kind: str, source: str, name: str | None, version: str | None) -> None:
    """Register SOURCE as a new version: a dataset file or folder, a collection's name, a job (adapter),
    or a merged-model folder."""
    from workbench.usecases.artifacts import register

    manifest = register(obj.services, kind, source, name=name, version=version)
    click.echo(f"registered {manifest.kind} {manifest.ref}: {len(manifest.files)} files")


QUIET = click.option("--quiet", is_flag=True, help="No progress bar.")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")


@artifacts.command("push")
@click.argument("ref")
@QUIET
@AS_JSON
@pass_context
def artifacts_push(obj: Context, ref: str, quiet: bool, as_json: bool) -> None:
    """Publish a workspace version to remote storage: parallel, resumes an interrupted push, manifest last."""
    _copy(obj, "push", ref, quiet=quiet, as_json=as_json)


@artifacts.command("pull")
@click.argument("ref")
@QUIET
@AS_JSON
@pass_context
def artifacts_pull(obj: Context, ref: str, quiet: bool, as_json: bool) -> None:
    """Fetch a remote version (NAME@VERSION or NAME:LABEL) into the workspace, every file verified."""
    _copy(obj, "pull", ref, quiet=quiet, as_json=as_json)


def _copy(obj: Context, verb: str, ref: str, *, quiet: bool, as_json: bool) -> None:
    from workbench.present.artifacts import copy_json, copy_text
    from workbench.usecases import artifacts as usecase

    copy = usecase.push if verb == "push" else usecase.pull
    done = copy(obj.services, ref, on_progress=None if quiet else progress_printer(f"{verb} {ref}"))
    click.echo(copy_json(done.report) if as_json else copy_text(done.report, f"{verb}ed", done.where))


@artifacts.command("label")
@click.argument("ref")
@click.argument("label")
@REMOTE
@click.option("--undo", is_flag=True, help="Move LABEL of NAME back to where its last move took it from.")
@pass_context
def artifacts_label(obj: Context, ref: str, label: str, remote: bool, undo: bool) -> None:
    """Point LABEL (candidate, staging, prod, any name) at NAME@VERSION; every move is audited."""
    from workbench.present.artifacts import label_text
    from workbench.usecases.artifacts import set_label, undo_label

    if undo:
        move = undo_label(obj.services, _ref(ref).name, label, remote=remote)
    else:
        move = set_label(obj.services, ref, label, remote=remote)
    click.echo(label_text(move))


@artifacts.command("rm")
@click.argument("ref")
@REMOTE
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def artifacts_rm(obj: Context, ref: str, remote: bool, yes: bool) -> None:
    """Delete NAME@VERSION (refused while a label or a live release points to it); with --remote also
    clears what an abandoned push left."""
    from workbench.present.artifacts import removed_text
    from workbench.usecases.artifacts import remove

    if _ref(ref).version is None:
        raise UsageError(f"say which version to delete: {_ref(ref).name}@VERSION")
    where = _where(_artifacts(obj).catalog(remote=remote))
    confirm(f"Delete {ref} from {where}?", yes=yes, refusal="refusing to delete without confirmation")
    click.echo(removed_text(remove(obj.services, ref, remote=remote)))
