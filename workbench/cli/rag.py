"""`workbench rag ...`: build ChromaDB collections from files, inspect retrieval, list and remove.

Collections made elsewhere are read-only: they can be listed and queried, never ingested into or removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.cli.context import Context, pass_context
from workbench.cli.output import confirm

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from services.rag.types import IngestProgress


@click.group()
def rag() -> None:
    """RAG collections on ChromaDB: ingest files, query (retrieval inspector), list, remove."""


def _client(obj: Context) -> ClientAPI:
    return obj.services.chroma()


@rag.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--collection", "-c", required=True, help="Collection to create or update.")
@click.option("--chunk-size", type=click.IntRange(1), help="Tokens per chunk (default: recorded, else rag.chunk_size).")
@click.option(
    "--overlap", type=click.IntRange(0), help="Tokens shared by neighbours (default: recorded, else rag.overlap)."
)
@click.option("--model", help="Embedding model (default: recorded, else rag.embedding_model).")
@click.option("--text-column", default="text", show_default=True, help="Column holding the text in .jsonl/.csv files.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress line.")
@pass_context
def rag_ingest(
    obj: Context,
    paths: tuple[Path, ...],
    collection: str,
    chunk_size: int | None,
    overlap: int | None,
    model: str | None,
    text_column: str,
    as_json: bool,
    quiet: bool,
) -> None:
    """Ingest files and folders (.txt .md .html .pdf .jsonl .csv): unchanged files are skipped,
    changed ones replaced, deleted ones removed; unreadable files are reported, never fatal."""
    from workbench.present import rag as render_rag
    from workbench.usecases.rag import ingest

    done = ingest(
        obj.services,
        paths,
        collection=collection,
        model=model,
        chunk_size=chunk_size,
        overlap=overlap,
        text_column=text_column,
        progress=None if quiet else _progress_printer(),
    )
    if not quiet:
        click.echo("", err=True)
    if as_json:
        click.echo(render_rag.report_json(done.report))
        return
    click.echo(render_rag.report_text(done.report, collection))
    click.echo(f"artifact: collection {done.artifact}")


def _progress_printer() -> Callable[[IngestProgress], None]:
    from workbench.present import rag as render_rag

    def show(progress: IngestProgress) -> None:
        click.echo(render_rag.progress_line(progress), err=True, nl=False)

    return show


@rag.command("query")
@click.argument("name")
@click.argument("text")
@click.option("-k", "k", type=click.IntRange(1, 1000), help="Chunks to return (default: rag.top_k).")
@click.option("--where", "where_json", metavar="JSON", help='Metadata filter, e.g. \'{"source": "/docs/a.md"}\'.')
@click.option("--model", help="Embedding model, for a collection made elsewhere that does not record one.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
@pass_context
def rag_query(
    obj: Context, name: str, text: str, k: int | None, where_json: str | None, model: str | None, as_json: bool
) -> None:
    """Show the chunks collection NAME retrieves for TEXT: distance, source, chunk and metadata."""
    from services.rag.query import parse_where, retrieve
    from workbench.present import rag as render_rag

    where = parse_where(where_json, field="--where")
    hits = retrieve(
        _client(obj),
        name,
        text,
        k=k or obj.settings.rag.top_k,
        where=where,
        cache_dir=obj.cache_dir(),
        model_id=model,
    )
    click.echo(render_rag.hits_json(hits) if as_json else render_rag.hits_text(hits))


@rag.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of collections.")
@pass_context
def rag_ls(obj: Context, as_json: bool) -> None:
    """List collections with their chunk count, embedding model and access (workbench or read-only)."""
    from services.rag.collections import list_collections
    from workbench.present import rag as render_rag

    found = list_collections(_client(obj))
    click.echo(render_rag.collections_json(found) if as_json else render_rag.collections_table(found))


@rag.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def rag_rm(obj: Context, name: str, yes: bool) -> None:
    """Remove a collection the workbench made (collections made elsewhere are read-only)."""
    from services.rag.collections import describe, open_collection, remove_collection

    client = _client(obj)
    info = describe(open_collection(client, name))
    count = info.count
    question = f"Remove collection {name!r} and its {count} chunks?"
    refusal = f"refusing to remove collection {name!r} without confirmation"
    confirm(question, yes=yes or info.read_only, refusal=refusal)
    remove_collection(client, name)
    click.echo(f"removed collection {name} ({count} chunks)")
