"""The workspace store: schema, migrations, WAL and concurrent writers from several processes."""

import multiprocessing
import sqlite3
import threading
from pathlib import Path

from services.store import SCHEMA_VERSION, Store


def test_migrate_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.migrate() == SCHEMA_VERSION
    assert store.schema_version() == SCHEMA_VERSION
    with store.connect() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "artifacts", "artifact_evals", "releases", "audit_log", "eval_runs"} <= tables


def test_migrate_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.migrate()
    store.audit(actor="ann", action="label.move", subject="adapter:chat", details={"to": "prod"})
    store.migrate()
    [entry] = store.audit_log(subject="adapter:chat")
    assert (entry.actor, entry.action, entry.details) == ("ann", "label.move", {"to": "prod"})


def test_upgrades_an_older_schema(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "workbench.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0  # a version-0 file, as an old release left it
    db.close()
    assert Store(tmp_path).migrate() == SCHEMA_VERSION


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.migrate()
    try:
        with store.transaction() as db:
            db.execute("INSERT INTO audit_log (at, actor, action, subject) VALUES ('t', 'a', 'b', 'c')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.audit_log() == []


def test_a_new_file_switches_to_wal_once_another_writer_lets_go(tmp_path: Path) -> None:
    """A writer holding the new file's lock makes SQLite refuse the switch to WAL at once, without
    waiting (what four processes starting together hit): the connection waits for it instead."""
    writer = sqlite3.connect(tmp_path / "workbench.db", isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE first (x)")
    threading.Timer(0.3, writer.execute, ["COMMIT"]).start()
    with Store(tmp_path, busy_timeout_s=10).connect() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [row["name"] for row in db.execute("SELECT name FROM sqlite_master")] == ["first"]
    writer.close()


def _write_entries(data_dir: str, worker: int, count: int) -> None:
    store = Store(Path(data_dir))
    store.migrate()
    for i in range(count):
        store.audit(actor=f"p{worker}", action="write", subject="load", details={"i": i})


def test_concurrent_processes_share_the_store(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_entries, args=(str(tmp_path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = Store(tmp_path).audit_log(subject="load", limit=1000)
    assert len(entries) == 160
    assert {e.actor for e in entries} == {"p0", "p1", "p2", "p3"}
