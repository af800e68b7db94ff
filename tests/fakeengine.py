"""A fake deploy target's Docker engine on a unix socket: the few Engine API calls the Deploy status reads.

The real `docker` client talks to it (`unix://SOCKET`): ping, version, container inspect, the proxy's
route file (archive) and a container's log tail. Containers are fixed data; a container's start time
is given as an age, so the uptime on screen does not depend on the day the test runs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import socketserver
import tarfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.deploy.proxy import CONF_DIR, PROXY, site_config

API_VERSION = "1.41"


@dataclass
class FakeContainer:
    """A container as `docker inspect` shows it (the parts the workbench reads)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    status: str = "running"
    health: str | None = "healthy"
    age: timedelta = timedelta(hours=3, minutes=2, seconds=30)
    logs: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def inspect(self) -> dict[str, Any]:
        started = (datetime.now(UTC) - self.age).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
        state: dict[str, Any] = {"Status": self.status, "Running": self.status == "running", "StartedAt": started}
        if self.health:
            state["Health"] = {"Status": self.health}
        return {
            "Id": hashlib.sha256(self.name.encode()).hexdigest(),
            "Name": "/" + self.name,
            "State": state,
            "Config": {"Labels": self.labels, "Tty": True, "Image": self.labels.get("workbench.image", "")},
        }


class FakeEngine:
    """Serves `containers` on a unix socket at `path` while in a `with` block; `url` is the engine URL."""

    def __init__(self, path: Path, containers: list[FakeContainer]) -> None:
        self.path = path
        self.containers = {c.name: c for c in containers}
        self._server: socketserver.UnixStreamServer | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def find(self, name_or_id: str) -> FakeContainer | None:
        """The container with this name or id (the client uses the id once it has inspected one)."""
        found = [c for c in self.containers.values() if name_or_id in (c.name, c.inspect()["Id"])]
        return found[0] if found else None

    def route(self, app: str, port: int, container: str, container_port: int = 8000) -> None:
        """Make the proxy send `app` (public `port`) to `container`, with the site file a deploy writes."""
        proxy = self.containers.setdefault(PROXY, FakeContainer(PROXY, health=None))
        proxy.files[f"{CONF_DIR}/wb-{app}.conf"] = site_config(app, port, container, container_port)

    def __enter__(self) -> FakeEngine:
        engine = self

        class Handler(_Handler):
            fake = engine

        self._server = _Server(str(self.path), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.path.unlink(missing_ok=True)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    fake: FakeEngine
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def do_HEAD(self) -> None:
        self._send(200, b"OK", "text/plain")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = re.sub(r"^/v[\d.]+", "", parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path == "/_ping":
            return self._send(200, b"OK", "text/plain", {"Api-Version": API_VERSION})
        if path == "/version":
            return self._json({"ApiVersion": API_VERSION, "Version": "20.10.24", "MinAPIVersion": "1.12"})
        found = re.fullmatch(r"/containers/([^/]+)/(json|archive|logs)", path)
        container = self.fake.find(found.group(1)) if found else None
        if found is None or container is None:
            return self._json({"message": f"No such container: {path}"}, 404)
        if found.group(2) == "json":
            return self._json(container.inspect())
        if found.group(2) == "logs":
            return self._send(200, container.logs.encode(), "application/octet-stream")
        return self._archive(container, query.get("path", ""))

    def _archive(self, container: FakeContainer, path: str) -> None:
        if path not in container.files:
            return self._json({"message": f"Could not find the file {path} in container {container.name}"}, 404)
        data = container.files[path].encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(Path(path).name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        stat = {"name": Path(path).name, "size": len(data), "mode": 420, "mtime": "2024-03-01T12:00:00Z"}
        header = base64.b64encode(json.dumps(stat).encode()).decode()
        self._send(200, buffer.getvalue(), "application/x-tar", {"X-Docker-Container-Path-Stat": header})

    def _json(self, value: object, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
