"""Files to text: .txt/.md as UTF-8, .html via BeautifulSoup, .pdf via pypdf (one section per page),
.jsonl/.csv one section per row from a text column (other scalar columns become metadata).

A file that cannot be read as its type raises `SkipFileError` with the reason; callers report it and go on.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl", ".csv"}
RESERVED_KEYS = {"source", "chunk_index", "chunk_count", "content_hash", "file_hash"}
SNIFF_BYTES = 8192


class SkipFileError(Exception):
    """A file is left out of an ingest; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Section:
    """A piece of a file chunked on its own (a whole text file, a PDF page, a table row)."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Discovery:
    """Files to ingest, the folders they were found under, and what was left out with reasons."""

    files: list[Path]
    roots: list[Path]
    skipped: list[tuple[str, str]]
    missing: list[Path]


def discover(paths: Sequence[Path]) -> Discovery:
    """Expand files and folders (recursively, hidden entries left out) into supported files."""
    files: list[Path] = []
    roots: list[Path] = []
    skipped: list[tuple[str, str]] = []
    missing: list[Path] = []
    for given in paths:
        path = Path(os.path.abspath(given.expanduser()))
        if path.is_dir():
            roots.append(path)
            found = sorted(p for p in _walk(path))
        elif path.exists():
            found = [path]
        else:
            missing.append(path)
            continue
        for file in found:
            if file.suffix.lower() in SUPPORTED:
                files.append(file)
            else:
                skipped.append((str(file), f"unsupported file type {file.suffix or '(none)'}"))
    return Discovery(list(dict.fromkeys(files)), roots, skipped, missing)


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        yield from (Path(folder) / n for n in names if not n.startswith("."))


def load_sections(path: Path, data: bytes, *, text_column: str = "text") -> list[Section]:
    """The sections of file `path` whose bytes are `data`; SkipFileError when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        sections = [Section(_decode(data))]
    elif suffix in HTML_SUFFIXES:
        sections = [_html(data)]
    elif suffix == ".pdf":
        sections = _pdf(data)
    elif suffix == ".jsonl":
        sections = _rows(_jsonl_rows(data), text_column)
    elif suffix == ".csv":
        sections = _rows(_csv_rows(data), text_column)
    else:
        raise SkipFileError(f"unsupported file type {suffix or '(none)'}")
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise SkipFileError("no text in the file")
    return sections


def _decode(data: bytes) -> str:
    if b"\x00" in data[:SNIFF_BYTES]:
        raise SkipFileError("binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFileError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None


def _html(data: bytes) -> Section:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    text = "\n".join(line for line in lines if line)
    return Section(text, {"title": title} if title else {})


def _pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SkipFileError("encrypted PDF")
        return [Section(page.extract_text() or "", {"page": n}) for n, page in enumerate(reader.pages, 1)]
    except SkipFileError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SkipFileError(f"unreadable PDF: {exc}") from None


def _jsonl_rows(data: bytes) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(_decode(data).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SkipFileError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise SkipFileError(f"line {number}: not a JSON object")
        yield row


def _csv_rows(data: bytes) -> Iterator[dict[str, Any]]:
    try:
        yield from csv.DictReader(io.StringIO(_decode(data)))
    except csv.Error as exc:
        raise SkipFileError(f"not valid CSV: {exc}") from None


def _rows(rows: Iterator[dict[str, Any]], text_column: str) -> list[Section]:
    sections: list[Section] = []
    columns: set[str] = set()
    for number, row in enumerate(rows, 1):
        columns.update(str(k) for k in row)
        text = row.get(text_column)
        if isinstance(text, str) and text.strip():
            sections.append(Section(text, {"row": number, **_row_metadata(row, text_column)}))
    if not sections:
        shown = ", ".join(sorted(columns)[:8]) or "none"
        raise SkipFileError(
            f"no text in column {text_column!r} (columns: {shown}); choose the column with --text-column"
        )
    return sections


def _row_metadata(row: dict[str, Any], text_column: str) -> dict[str, Any]:
    return {
        str(key): value
        for key, value in row.items()
        if key != text_column
        and str(key) not in RESERVED_KEYS | {"row"}
        and isinstance(value, str | int | float | bool)
        and value != ""
    }
