"""The Docker engine through docker-py's low-level `APIClient` (imported lazily), and its local images.

`connect` is the one place a client is made, so tests hand in a fake engine by replacing it.
`engine_errors` turns docker-py's and requests' exceptions into `services.errors`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.errors import DockerUnavailableError, NotFoundError, WorkbenchError
from services.images.apps import AppSource, split_reference

APP_LABEL = "io.llm-workbench.app"
"""Label every image the workbench builds carries: the app's name."""
VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
ENGINE_HINT = "start the Docker engine, or point `images.docker_host` (or DOCKER_HOST) at a running one"


@dataclass(frozen=True)
class LocalImage:
    """An image of an app in the local engine (one row per tag)."""

    app: str
    reference: str
    image_id: str
    """Short id (12 hex digits)."""
    created: datetime
    size_bytes: int
    version: str | None
    revision: str | None

    @property
    def tag(self) -> str | None:
        return split_reference(self.reference)[1]


def connect(docker_host: str | None = None, *, environ: Mapping[str, str] | None = None) -> Any:
    """A docker-py `APIClient` for `docker_host` (else DOCKER_HOST, else the local socket), API
    version negotiated; `DockerUnavailableError` when the engine does not answer."""
    import docker
    from docker.utils import kwargs_from_env

    params: dict[str, Any] = kwargs_from_env(environment=dict(environ if environ is not None else os.environ))
    if docker_host:
        params["base_url"] = docker_host
    where = params.get("base_url") or "the local socket"
    with engine_errors(f"Docker engine at {where}"):
        return docker.APIClient(version="auto", timeout=120, **params)


@contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Map docker-py and connection errors raised inside the block to `services.errors`."""
    import docker.errors
    import requests.exceptions

    try:
        yield
    except WorkbenchError:
        raise
    except docker.errors.NotFound as exc:
        raise NotFoundError(f"{what}: {_explanation(exc)}") from None
    except docker.errors.APIError as exc:
        raise WorkbenchError(f"{what}: the engine answered {exc.status_code}: {_explanation(exc)}") from None
    except (docker.errors.DockerException, requests.exceptions.ConnectionError, ConnectionError) as exc:
        raise DockerUnavailableError(f"{what} cannot be reached: {_first_line(exc)}", hint=ENGINE_HINT) from None


def _explanation(exc: Any) -> str:
    return _first_line(getattr(exc, "explanation", None) or exc)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else type(value).__name__


def list_local_images(api: Any, apps: Iterable[AppSource], *, registry: str | None) -> list[LocalImage]:
    """Local images of `apps`: those the workbench built (by label) and any tagged `<registry>/<app>`."""
    names = {app.name for app in apps}
    with engine_errors("listing local images"):
        rows = api.images(filters={"label": APP_LABEL})
        for name in sorted(names):
            rows += api.images(name=f"{registry}/{name}" if registry else name)
    seen: set[tuple[str, str]] = set()
    found: list[LocalImage] = []
    for row in rows:
        for image in _tagged(row, names, registry):
            if (image.reference, image.image_id) not in seen:
                seen.add((image.reference, image.image_id))
                found.append(image)
    return sorted(found, key=lambda image: (image.app, -image.created.timestamp(), image.reference))


def _tagged(row: Mapping[str, Any], names: set[str], registry: str | None) -> Iterator[LocalImage]:
    labels = row.get("Labels") or {}
    for reference in row.get("RepoTags") or []:
        app = labels.get(APP_LABEL) or _app_of(reference, registry)
        if app in names and reference != "<none>:<none>":
            yield LocalImage(
                app=app,
                reference=reference,
                image_id=str(row.get("Id", "")).removeprefix("sha256:")[:12],
                created=datetime.fromtimestamp(int(row.get("Created") or 0), tz=UTC),
                size_bytes=int(row.get("Size") or 0),
                version=labels.get(VERSION_LABEL),
                revision=labels.get(REVISION_LABEL),
            )


def _app_of(reference: str, registry: str | None) -> str:
    repository, _ = split_reference(reference)
    if registry and repository.startswith(registry.rstrip("/") + "/"):
        return repository[len(registry.rstrip("/")) + 1 :]
    return repository.rsplit("/", 1)[-1]


def image_exists(api: Any, reference: str) -> bool:
    """Whether the local engine has an image called `reference`."""
    try:
        with engine_errors(f"inspecting {reference}"):
            api.inspect_image(reference)
    except NotFoundError:
        return False
    return True
