"""`workbench rag ...` through click: exit codes, --json shapes, progress, and a real Chroma server
(HttpClient) whose token never shows in any output."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

from tests.integration.rag_support import copy_demo_documents
from workbench.cli.main import cli

CANARY = "chroma-CANARY-7f3c2e1d9b8a4c6e"

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        full = {
            "HF_HUB_CACHE": str(tmp_path / "hub"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "data"),
            "WORKBENCH_RAG__CHUNK_SIZE": "64",
            "WORKBENCH_RAG__OVERLAP": "8",
            **(env or {}),
        }
        return CliRunner().invoke(cli, list(args), env=full, input=stdin)

    return run


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return copy_demo_documents(tmp_path / "docs")


def test_ingest_query_ls_rm(run: Run, docs: Path) -> None:
    first = run("rag", "ingest", str(docs), "--collection", "demo-docs")
    assert first.exit_code == 0, first.output
    assert "chunks/s" in first.stderr and f"files {len(list(docs.iterdir()))}/" in first.stderr
    assert "added" in first.stdout
    again = run("rag", "ingest", str(docs), str(docs / "nope.md"), "-c", "demo-docs", "--json", "--quiet")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["chunks_added"] == 0 and report["unchanged_files"] == len(list(docs.iterdir()))
    assert report["skipped"] == [{"path": str(docs / "nope.md"), "reason": "not found"}]
    assert set(report) == {
        "added_files", "replaced_files", "unchanged_files", "removed_files",
        "chunks_added", "chunks_removed", "seconds", "skipped",
    }  # fmt: skip

    query = run("rag", "query", "demo-docs", "How many GPU hours may fine-tune jobs use?", "-k", "3", "--json")
    assert query.exit_code == 0, query.output
    hits = json.loads(query.stdout)
    assert len(hits) == 3 and set(hits[0]) == {"id", "source", "chunk_index", "distance", "text", "metadata"}
    assert any(h["source"].endswith("06-gpu-budget.txt") for h in hits)
    source = hits[0]["source"]
    where = run("rag", "query", "demo-docs", "GPU", "--where", json.dumps({"source": source}), "--json")
    assert {h["source"] for h in json.loads(where.stdout)} == {source}
    text = run("rag", "query", "demo-docs", "release gate")
    assert text.exit_code == 0 and "distance" in text.stdout and "[chunk " in text.stdout

    listed = run("rag", "ls", "--json")
    assert json.loads(listed.stdout) == [
        {
            "name": "demo-docs",
            "count": json.loads(listed.stdout)[0]["count"],
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "read_only": False,
        }
    ]
    assert "demo-docs" in run("rag", "ls").stdout

    refused = run("rag", "rm", "demo-docs")  # no tty, no --yes
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert run("rag", "rm", "demo-docs", "--yes").exit_code == 0
    assert json.loads(run("rag", "ls", "--json").stdout) == []


def test_usage_errors_exit_2_with_one_line(run: Run, docs: Path) -> None:
    assert run("rag", "ingest", str(docs), "-c", "demo-docs", "--quiet").exit_code == 0
    bad = run("rag", "query", "demo-docs", "x", "--where", "{source: 1}")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: --where is not valid JSON") and "Traceback" not in bad.output
    assert run("rag", "query", "demo-docs", "x", "--where", "[1]").exit_code == 2
    missing = run("rag", "query", "no-such-collection", "x")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    too_big = run("rag", "ingest", str(docs), "-c", "other", "--chunk-size", "999")
    assert too_big.exit_code == 2 and "256" in too_big.stderr
    assert run("rag", "rm", "no-such-collection", "--yes").exit_code == 1


def test_read_only_collection_from_plain_chromadb(run: Run, tmp_path: Path, docs: Path) -> None:
    import chromadb

    plain = chromadb.PersistentClient(path=str(tmp_path / "data" / "chroma"))
    plain.create_collection("external", embedding_function=None).add(
        ids=["1"], embeddings=[[0.1] * 384], documents=["hello"], metadatas=[{"source": "x"}]
    )
    listed = json.loads(run("rag", "ls", "--json").stdout)
    assert listed == [{"name": "external", "count": 1, "model": None, "read_only": True}]
    unknown = run("rag", "query", "external", "hello")
    assert unknown.exit_code == 2 and "--model" in unknown.stderr
    known = run("rag", "query", "external", "hello", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--json")
    assert known.exit_code == 0 and json.loads(known.stdout)[0]["source"] == "x"
    refused = run("rag", "ingest", str(docs), "-c", "external", "--model", "sentence-transformers/all-MiniLM-L6-v2")
    assert refused.exit_code == 2 and "read-only" in refused.stderr
    assert run("rag", "rm", "external", "--yes").exit_code == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (`chroma run`, shipped with chromadb) on a free local port."""
    port = free_port()
    binary = Path(sys.executable).parent / "chroma"
    log = (tmp_path / "chroma-server.log").open("w")
    proc = subprocess.Popen(
        [str(binary), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log_text = (tmp_path / "chroma-server.log").read_text()
                    raise RuntimeError(f"chroma server did not start: {log_text}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_chroma_server_with_token_never_prints_it(run: Run, docs: Path, chroma_server: str, tmp_path: Path) -> None:
    env = {"WORKBENCH_RAG__SERVER_URL": chroma_server, "WORKBENCH_CHROMA_TOKEN": CANARY}
    results = [
        run("rag", "ingest", str(docs), "-c", "served", env=env),
        run("rag", "query", "served", "GPU budget", "--json", env=env),
        run("rag", "ls", "--json", env=env),
        run("--debug", "config", "show", env=env),
    ]
    assert [r.exit_code for r in results] == [0, 0, 0, 0], [r.output for r in results]
    assert json.loads(results[2].stdout)[0]["name"] == "served"
    assert not (tmp_path / "data" / "chroma").exists()  # nothing went to the embedded store
    assert all(CANARY not in r.output for r in results)


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.seen.append(self.headers.get("Authorization", ""))
        body = b'{"error": "Unauthorized", "message": "bad token"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


def test_refusing_server_gets_the_token_in_the_header_and_the_user_no_token(run: Run) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"WORKBENCH_RAG__SERVER_URL": f"http://127.0.0.1:{server.server_port}", "WORKBENCH_CHROMA_TOKEN": CANARY}
        result = run("rag", "ls", env=env)
    finally:
        server.shutdown()
    assert result.exit_code == 1 and "cannot reach the Chroma server" in result.stderr
    assert f"Bearer {CANARY}" in _Recorder.seen
    assert CANARY not in result.output
    assert os.environ.get("WORKBENCH_CHROMA_TOKEN") != CANARY
