"""Upstreams for the `openai` engine's tests: the chatbot itself in a second process (a real
OpenAI-compatible server), and a scripted one that answers whatever bytes a test gives it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

UPSTREAM_KEY = "sk-upstream-canary-3b8e1d6f9a0c4e72b5d1"
"""The only key the upstream accepts: it must never appear in the front's logs or answers."""
UPSTREAM_MODEL = "upstream-model"
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"


def sse(*payloads: object) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads)


def piece(text: str | None = None, finish: str | None = None) -> dict[str, object]:
    delta = {"content": text} if text is not None else {}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


GOOD = SSE_HEAD + sse(piece("Roll "), piece("back."), piece(finish="stop"), b"[DONE]")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 120.0, process: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the upstream exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=5, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")


@contextlib.contextmanager
def chatbot_process(env: dict[str, str], log: Path) -> Iterator[str]:
    """The chatbot (`uvicorn --factory chatbot.app:create_app`) in its own process; its base URL.
    Its stdout and stderr (the JSON log) go to `log`."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "chatbot.app:create_app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, process=process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class ScriptedUpstream:
    """A loopback HTTP server answering every request with `reply(connection)` (raw bytes: anything
    at all); it keeps the requests it got and sets `closed` when a client hangs up on a held answer."""

    def __init__(self, reply: bytes | Callable[[socket.socket], None]) -> None:
        self.reply = reply
        self.requests: list[tuple[bytes, dict[str, object]]] = []
        self.closed = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append((head, json.loads(body or b"{}")))
            with contextlib.suppress(OSError):
                if callable(self.reply):
                    self.reply(conn)
                else:
                    conn.sendall(self.reply)

    def hold(self, conn: socket.socket) -> None:
        """A reply: one piece of text, then the connection held open until the client leaves."""
        conn.sendall(SSE_HEAD + sse(piece("Hold on")))
        conn.settimeout(60)
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass
        self.closed.set()

    def close(self) -> None:
        self.sock.close()
