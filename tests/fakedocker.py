"""A stand-in for docker-py's low-level `APIClient`, for tests that must not need a Docker engine.

It speaks the same decoded event shapes the real engine streams (`{"stream": ...}` build lines with
`Step n/m`, `{"aux": {"ID": ...}}`, per-layer push statuses and the final `aux` digest), keeps the
images it "built" and records every call, so services, the CLI and the Images mode run unchanged.
"""

from __future__ import annotations

import hashlib
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker.errors

FIXED_CREATED = 1709294400  # 2024-03-01 12:00 UTC
STEPS = (
    "FROM ${BASE_IMAGE}",
    "RUN useradd --system --uid 10001 app",
    "COPY app/ /app/",
    "USER 10001:10001",
)
LAYERS = (("1f0a9c2b3d4e", 31_457_280), ("2a1b0c9d8e7f", 4_194_304), ("3c2d1e0f9a8b", 12_288))


@dataclass
class FakeDockerAPI:
    """Build, push, list and inspect without an engine; `step_delay` slows a build down (cancel tests)."""

    step_delay: float = 0.0
    fail_step: int | None = None
    """Step number whose RUN fails (the engine's errorDetail), or None."""
    push_error: str | None = None
    """Message of an errorDetail the push ends with (e.g. "unauthorized: authentication required")."""
    existing_layers: int = 0
    """How many of the layers the registry already has."""
    hooks: dict[str, list[Any]] = field(default_factory=lambda: {"response": []})
    images_by_ref: dict[str, dict[str, Any]] = field(default_factory=dict)
    builds: list[dict[str, Any]] = field(default_factory=list)
    contexts: list[dict[str, bytes]] = field(default_factory=list)
    """The files of each build's context (a tar sent as `fileobj`), by name."""
    pushes: list[dict[str, Any]] = field(default_factory=list)
    closed_streams: int = 0

    # ------------------------------------------------------------------ build

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.builds.append(kwargs)
        if kwargs.get("fileobj") is not None:
            self.contexts.append(read_context(kwargs["fileobj"]))
        return self._build_stream(kwargs["tag"], dict(kwargs.get("labels") or {}))

    def _build_stream(self, tag: str, labels: dict[str, str]) -> Iterator[dict[str, Any]]:
        try:
            for number, instruction in enumerate(STEPS, start=1):
                yield {"stream": f"Step {number}/{len(STEPS)} : {instruction}\n"}
                time.sleep(self.step_delay)
                if number == self.fail_step:
                    yield {"stream": "useradd: failure while writing changes\n"}
                    message = f"The command '/bin/sh -c {instruction[4:]}' returned a non-zero code: 1"
                    yield {"errorDetail": {"code": 1, "message": message}, "error": message}
                    return
                # a line split over two chunks, as the engine sometimes sends it
                yield {"stream": f" ---> Running in {number:012x}"}
                yield {"stream": f"\n ---> {number:012x}\n"}
            image_id = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
            yield {"aux": {"ID": image_id}}
            yield {"stream": f"Successfully built {image_id[7:19]}\n"}
            yield {"stream": f"Successfully tagged {tag}\n"}
            self.images_by_ref[tag] = {
                "Id": image_id,
                "RepoTags": [tag],
                "Created": FIXED_CREATED,
                "Size": 48_300_000,
                "Labels": labels,
            }
        finally:
            self.closed_streams += 1

    # ------------------------------------------------------------------ push

    def push(self, repository: str, tag: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.pushes.append({"repository": repository, "tag": tag, **kwargs})
        return self._push_stream(repository, tag)

    def _push_stream(self, repository: str, tag: str) -> Iterator[dict[str, Any]]:
        yield {"status": f"The push refers to repository [{repository}]"}
        for layer, _ in LAYERS:
            yield {"status": "Preparing", "progressDetail": {}, "id": layer}
        if self.push_error:
            yield {"errorDetail": {"message": self.push_error}, "error": self.push_error}
            return
        for index, (layer, size) in enumerate(LAYERS):
            if index < self.existing_layers:
                yield {"status": "Layer already exists", "progressDetail": {}, "id": layer}
                continue
            for part in (1, 2, 3):
                time.sleep(self.step_delay)
                yield {"status": "Pushing", "progressDetail": {"current": size * part // 3, "total": size}, "id": layer}
            yield {"status": "Pushed", "progressDetail": {}, "id": layer}
        digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
        yield {"status": f"{tag}: digest: {digest} size: 949"}
        yield {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": 949}}

    # ------------------------------------------------------------------ images

    def images(self, name: str | None = None, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        rows = list(self.images_by_ref.values())
        if name is not None:
            rows = [row for row in rows if any(ref.rsplit(":", 1)[0] == name for ref in row["RepoTags"])]
        label = (filters or {}).get("label")
        if label is not None:
            rows = [row for row in rows if label in (row.get("Labels") or {})]
        return rows

    def inspect_image(self, reference: str) -> dict[str, Any]:
        if reference not in self.images_by_ref:
            raise docker.errors.ImageNotFound(f"No such image: {reference}")
        return self.images_by_ref[reference]

    def close(self) -> None:
        pass


def read_context(fileobj: Any) -> dict[str, bytes]:
    """The files of a build context tar (folders as empty values), read as the engine reads it."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=fileobj, mode="r") as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member) if member.isfile() else None
            files[member.name] = data.read() if data else b""
    return files
