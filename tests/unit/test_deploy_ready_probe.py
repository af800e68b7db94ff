"""The deploy's readiness probe gives up at once when the app says its load failed, instead of
waiting out the app's whole ready timeout; it waits while the app is still loading."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from services.deploy.serving import READY_PROBE
from tests.localhttp import LocalHandler, LocalHttpServer


class Readyz(LocalHandler):
    status = "loading"

    def _serve(self) -> None:
        body = json.dumps({"status": Readyz.status}).encode()
        self.send_response(200 if Readyz.status == "ready" else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def url() -> Iterator[str]:
    server = LocalHttpServer(("127.0.0.1", 0), Readyz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/readyz"
    server.shutdown()


def probe(url: str, timeout_s: float) -> tuple[int, float]:
    started = time.monotonic()
    code = subprocess.run([sys.executable, "-c", READY_PROBE, url, str(timeout_s)], check=False).returncode
    return code, time.monotonic() - started


@pytest.mark.parametrize(("status", "code"), [("ready", 0), ("failed", 2), ("loading", 1)])
def test_the_probe_answers_by_what_readyz_says(url: str, status: str, code: int) -> None:
    Readyz.status = status
    got, took = probe(url, timeout_s=3.0 if status == "loading" else 60.0)
    assert got == code
    assert took < 10  # a failed load is told at once, never after the 60 s timeout
