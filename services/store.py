"""The workspace store: one SQLite database (WAL) shared by the TUI, CLI commands and job processes.

Every call opens its own short-lived connection, so threads and processes never share one;
WAL mode plus a busy timeout lets readers and one writer work at the same time. The schema
version lives in `PRAGMA user_version`; `MIGRATIONS[i]` upgrades version i to i + 1.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_NAME = "workbench.db"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        folder TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        pid INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE artifacts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        manifest TEXT NOT NULL DEFAULT '{}',
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (kind, name, version)
    );
    CREATE TABLE labels (
        artifact_name TEXT NOT NULL,
        label TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (artifact_name, label)
    );
    CREATE TABLE releases (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        target TEXT NOT NULL,
        version TEXT NOT NULL,
        status TEXT NOT NULL,
        bom TEXT NOT NULL DEFAULT '{}',
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_log_subject ON audit_log (subject);
    """,
    """
    CREATE TABLE eval_runs (
        id TEXT PRIMARY KEY,
        suite TEXT NOT NULL,
        started TEXT NOT NULL,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        inputs TEXT NOT NULL DEFAULT '{}',
        results TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX eval_runs_started ON eval_runs (started);
    """,
    # Labels live beside the versions they name (in the workspace folder and in remote storage).
    """
    DROP TABLE labels;
    CREATE TABLE artifact_evals (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (name, version, run_id)
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    at: str
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """The workspace database under a data folder; cheap to create, safe to share across processes."""

    def __init__(self, data_dir: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = data_dir / DB_NAME
        self._busy_timeout_s = busy_timeout_s

    def migrate(self) -> int:
        """Create or upgrade the schema; return the schema version now in force."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one migrator at a time across processes
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        return SCHEMA_VERSION

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode with autocommit off; closed on exit."""
        db = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            self._enter_wal(db)
            db.execute("PRAGMA foreign_keys = ON")
            yield db
        finally:
            db.close()

    def _enter_wal(self, db: sqlite3.Connection) -> None:
        """WAL mode (kept in the file once set). Processes that switch a new file at the same time can
        deadlock on its lock, and SQLite then answers SQLITE_BUSY without waiting: try again."""
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken immediately, committed on success, rolled back on error."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def schema_version(self) -> int:
        with self.connect() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def audit(self, *, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        """Append one entry to the audit log."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO audit_log (at, actor, action, subject, details) VALUES (?, ?, ?, ?, ?)",
                (utcnow(), actor, action, subject, json.dumps(details, sort_keys=True)),
            )

    def audit_log(self, *, subject: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest audit entries first, optionally for one subject."""
        query = "SELECT at, actor, action, subject, details FROM audit_log"
        params: tuple[Any, ...] = ()
        if subject is not None:
            query, params = query + " WHERE subject = ?", (subject,)
        with self.connect() as db:
            rows = db.execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
