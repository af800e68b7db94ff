"""Pushing an image with per-layer progress: docker-py's `api.push(..., stream=True, decode=True)`.

The engine reports each layer by id (`Preparing`, `Waiting`, `Pushing` with current/total bytes,
`Pushed` or `Layer already exists`) and, at the end, the manifest's digest and size in an `aux`
event. `PushTracker` folds those events into one `PushProgress` per report, so a UI can replace
an older report with a newer one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.errors import CancelledError, NextStep, NotFoundError, RegistryAuthError, RegistryError
from services.images.apps import split_reference
from services.images.credentials import RegistryCredentials
from services.images.engine import engine_errors, image_exists
from services.images.stream import AbortableStream, stream_failure
from services.progress import CancelToken

FINISHED = ("Pushed", "Layer already exists", "Mounted from")
AUTH_WORDS = ("unauthorized", "authentication required", "no basic auth credentials", "denied", "401")
CANCEL_HINT = "layers pushed so far stay in the registry; push again to finish (it skips them)"


@dataclass(frozen=True)
class LayerProgress:
    """One layer of a push."""

    id: str
    status: str
    current: int = 0
    total: int | None = None

    @property
    def finished(self) -> bool:
        return self.status.startswith(FINISHED)

    @property
    def existed(self) -> bool:
        """The registry had it already (nothing was uploaded)."""
        return self.status.startswith(("Layer already exists", "Mounted from"))


@dataclass(frozen=True)
class PushProgress:
    """Every layer's state so far; each report makes the previous one redundant."""

    reference: str
    layers: tuple[LayerProgress, ...]
    changed: tuple[LayerProgress, ...] = ()
    """Layers whose status changed since the previous report."""

    @property
    def done_bytes(self) -> int:
        return sum((layer.total or layer.current) if layer.finished else layer.current for layer in self.layers)

    @property
    def total_bytes(self) -> int:
        return sum(layer.total or layer.current for layer in self.layers)

    @property
    def finished(self) -> int:
        return sum(1 for layer in self.layers if layer.finished)

    @property
    def fraction(self) -> float:
        if not self.layers:
            return 0.0
        if self.total_bytes:
            return min(self.done_bytes / self.total_bytes, 1.0)
        return self.finished / len(self.layers)


OnPush = Callable[[PushProgress], None]


@dataclass(frozen=True)
class PushResult:
    """A finished push: what the registry now holds under the tag."""

    reference: str
    digest: str
    manifest_bytes: int
    layers: tuple[LayerProgress, ...]
    seconds: float
    size_bytes: int | None = None
    """Compressed size of the image in the registry (config and layers), when the registry told us."""

    @property
    def pushed_layers(self) -> int:
        return sum(1 for layer in self.layers if layer.finished and not layer.existed)

    @property
    def existing_layers(self) -> int:
        return sum(1 for layer in self.layers if layer.existed)

    @property
    def pushed_bytes(self) -> int:
        return sum(layer.total or layer.current for layer in self.layers if layer.finished and not layer.existed)


@dataclass
class PushTracker:
    """Folds the engine's push events into `PushProgress` reports (at most one per `interval_s`,
    and always when a layer's status changes)."""

    reference: str
    on_progress: OnPush | None = None
    interval_s: float = 0.1
    auth_hint: str = ""
    layers: dict[str, LayerProgress] = field(default_factory=dict)
    digest: str = ""
    manifest_bytes: int = 0
    _changed: dict[str, LayerProgress] = field(default_factory=dict)
    _last_report: float = 0.0

    def feed(self, event: Mapping[str, Any]) -> None:
        if "error" in event or "errorDetail" in event:
            raise self._failure(event)
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest, self.manifest_bytes = str(aux["Digest"]), int(aux.get("Size") or 0)
        layer_id, status = event.get("id"), str(event.get("status") or "")
        if layer_id and status and not status.startswith("The push refers to"):
            self._update(str(layer_id), status, event.get("progressDetail") or {})

    def _update(self, layer_id: str, status: str, detail: Mapping[str, Any]) -> None:
        before = self.layers.get(layer_id)
        total = detail.get("total") or (before.total if before else None)
        current = int(detail.get("current") or (total or 0 if status.startswith(FINISHED) else 0))
        if total:  # the engine's running count can overshoot the layer's size
            current = min(current, int(total))
        layer = LayerProgress(layer_id, status, current, int(total) if total else None)
        self.layers[layer_id] = layer
        if before is None or before.status != status:
            self._changed[layer_id] = layer
            self.report()
        elif time.monotonic() - self._last_report >= self.interval_s:
            self.report()

    def report(self) -> PushProgress:
        progress = PushProgress(self.reference, tuple(self.layers.values()), tuple(self._changed.values()))
        self._changed.clear()
        self._last_report = time.monotonic()
        if self.on_progress is not None:
            self.on_progress(progress)
        return progress

    def _failure(self, event: Mapping[str, Any]) -> RegistryError:
        detail = event.get("errorDetail") or {}
        message = str(detail.get("message") or event.get("error") or "unknown error").strip()
        registry = self.reference.split("/", 1)[0]
        if any(word in message.lower() for word in AUTH_WORDS):
            return RegistryAuthError(
                f"registry {registry} refused the push of {self.reference}: {message}", hint=self.auth_hint or None
            )
        return RegistryError(
            f"push of {self.reference} failed: {message}",
            hint="check that the engine can reach the registry (a plain-HTTP registry must be in the engine's "
            "insecure-registries) and push again",
        )


def push_image(
    api: Any,
    reference: str,
    *,
    credentials: RegistryCredentials | None,
    on_progress: OnPush | None = None,
    cancel: CancelToken | None = None,
    auth_hint: str = "",
) -> PushResult:
    """Push local image `reference` (`registry/app:tag`) with `credentials` (None: anonymous);
    `RegistryAuthError` when the registry refuses them, `CancelledError` when `cancel` is set."""
    repository, tag = split_reference(reference)
    if tag is None:
        raise NotFoundError(f"{reference} has no tag", hint="push APP or APP:TAG")
    if not image_exists(api, reference):
        raise NotFoundError(
            f"no local image {reference}", step=NextStep.of("image.build", app=repository.rsplit("/", 1)[-1])
        )
    started = time.monotonic()
    tracker = PushTracker(reference, on_progress, auth_hint=auth_hint)
    what = f"push of {reference}"
    # {} rather than None: docker-py would otherwise fall back to the default Docker config's login
    auth = credentials.auth_config() if credentials is not None else {}
    try:
        with AbortableStream(api, cancel), engine_errors(what):
            events = api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth)
            with contextlib.closing(events):
                for event in events:
                    if cancel is not None and cancel.cancelled:
                        raise CancelledError(f"{what} cancelled", hint=CANCEL_HINT)
                    tracker.feed(event)
    except Exception as exc:
        raise stream_failure(cancel, what, exc, cancel_hint=CANCEL_HINT) from None
    if cancel is not None and cancel.cancelled:
        raise CancelledError(f"{what} cancelled", hint=CANCEL_HINT)
    tracker.report()
    if not tracker.digest:
        raise RegistryError(f"push of {reference} ended without a digest", hint="push again")
    layers = tuple(tracker.layers.values())
    return PushResult(reference, tracker.digest, tracker.manifest_bytes, layers, time.monotonic() - started)
