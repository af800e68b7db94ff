"""Building an app's image with docker-py's low-level streaming `APIClient.build(..., decode=True)`.

The build log arrives as typed events (`BuildStep` for `Step n/m : ...`, `BuildLog` for every
other line, `BuildFinished` last) so the CLI prints it and the Images mode streams it into a log.
Build arguments are recorded in the image's history, so names that look like secrets are refused:
secrets reach an app at run time (a mounted file or the environment), never at build time.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.errors import CancelledError, ImageBuildError, UsageError
from services.images.apps import RECIPE_ARGS, AppSource, GitVersion, app_version, image_reference
from services.images.engine import APP_LABEL, engine_errors
from services.images.kit import DOCKERFILE, AppKit, require_kit, write_context
from services.images.stream import AbortableStream, stream_failure
from services.progress import CancelToken

RESERVED_ARGS = frozenset({"VERSION", "GIT_REVISION", "BASE_IMAGE"})
"""Build arguments the workbench sets itself (BASE_IMAGE through `base_image`)."""
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")


@dataclass(frozen=True)
class BuildRequest:
    """Everything one build needs, decided before it starts (see `plan_build`)."""

    app: AppSource
    reference: str
    version: GitVersion
    build_args: dict[str, str]
    labels: dict[str, str]
    nocache: bool = False
    kit: AppKit | None = None
    """The app kit whose wheel goes into `kit/` of the context (for an app whose Dockerfile copies it),
    and whose Dockerfile builds an app with a `recipe`."""

    @property
    def kit_dockerfile(self) -> Path | None:
        """The kit's Dockerfile, when the app is built from it."""
        return self.kit.dockerfile if self.kit is not None and self.app.recipe is not None else None


@dataclass(frozen=True)
class BuildStep:
    """A Dockerfile instruction starting: `Step number/total : instruction`."""

    number: int
    total: int
    instruction: str

    @property
    def text(self) -> str:
        return f"Step {self.number}/{self.total} : {self.instruction}"


@dataclass(frozen=True)
class BuildLog:
    """One line of build output (a step's output, ` ---> Using cache`, a pull's status)."""

    text: str


@dataclass(frozen=True)
class BuildFinished:
    """The image exists and carries its tag."""

    image_id: str

    @property
    def text(self) -> str:
        return f"built {self.image_id.removeprefix('sha256:')[:12]}"


BuildEvent = BuildStep | BuildLog | BuildFinished
OnBuildEvent = Callable[[BuildEvent], None]


@dataclass(frozen=True)
class BuildResult:
    """A finished build."""

    app: str
    reference: str
    image_id: str
    version: str
    revision: str
    dirty: bool
    steps: int
    cached_steps: int
    seconds: float


def parse_build_args(pairs: Iterable[str]) -> dict[str, str]:
    """`KEY=VALUE` strings as a dict; `UsageError` for a malformed, reserved or secret-looking one."""
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"build argument {pair!r} is not KEY=VALUE", hint="e.g. --build-arg PIP_NO_CACHE_DIR=1")
        args[key] = value
    check_build_args(args)
    return args


def check_build_args(args: Mapping[str, str]) -> None:
    """Refuse build arguments the workbench sets itself, and names that look like secrets."""
    for key in args:
        if key in RESERVED_ARGS:
            hint = "pass --base-image instead" if key == "BASE_IMAGE" else "the workbench sets it from git"
            raise UsageError(f"build argument {key} is set by the workbench", hint=hint)
        if SECRET_NAME.search(key):
            raise UsageError(
                f"build argument {key} looks like a secret, and build arguments stay in the image's history",
                hint="give secrets to the app at run time (a mounted file or an environment variable)",
            )


def plan_build(
    app: AppSource,
    *,
    registry: str | None,
    base_image: str | None = None,
    build_args: Mapping[str, str] | None = None,
    nocache: bool = False,
    version: GitVersion | None = None,
    kit: AppKit | None = None,
) -> BuildRequest:
    """The tag, build arguments (BASE_IMAGE, VERSION, GIT_REVISION, the user's, then APP and
    DESCRIPTION of an app built from the kit's Dockerfile) and labels of a build; `kit` goes into the
    context when the app's Dockerfile copies `kit/` or is the kit's (`UsageError` without one)."""
    user = dict(build_args or {})
    check_build_args(user)
    if app.recipe is not None and RECIPE_ARGS & set(user):
        raise UsageError(
            f"build arguments {', '.join(sorted(RECIPE_ARGS))} of {app.name} are set by the workbench",
            hint="they come from [tool.appkit.image] of the app's pyproject.toml",
        )
    kit = require_kit(app, kit)
    version = version or app_version(app.path, also=[kit.source] if kit else [])
    args = {"VERSION": version.version, "GIT_REVISION": version.revision or "unknown", **user}
    if app.recipe is not None:
        args |= app.recipe.build_args()
    if base_image:
        args["BASE_IMAGE"] = base_image
    # one label (each is a build step of its own); version and revision labels are the Dockerfile's
    labels = {APP_LABEL: app.name}
    reference = image_reference(registry, app.name, version.version)
    return BuildRequest(app, reference, version, args, labels, nocache, kit)


def build_image(
    api: Any, request: BuildRequest, *, on_event: OnBuildEvent | None = None, cancel: CancelToken | None = None
) -> BuildResult:
    """Build `request` on the engine behind `api`, reporting every event; `ImageBuildError` when a
    step fails, `CancelledError` when `cancel` is set (the engine stops the build, nothing is tagged)."""
    started = time.monotonic()
    counter = _StepCounter()
    image_id = ""
    for event in stream_build(api, request, cancel=cancel):
        counter.see(event)
        if isinstance(event, BuildFinished):
            image_id = event.image_id
        if on_event is not None:
            on_event(event)
    return BuildResult(
        app=request.app.name,
        reference=request.reference,
        image_id=image_id,
        version=request.version.version,
        revision=request.version.revision,
        dirty=request.version.dirty,
        steps=counter.steps,
        cached_steps=counter.cached,
        seconds=time.monotonic() - started,
    )


@dataclass
class _StepCounter:
    steps: int = 0
    cached: int = 0

    def see(self, event: BuildEvent) -> None:
        if isinstance(event, BuildStep):
            self.steps += 1
        elif isinstance(event, BuildLog) and event.text.strip() == "---> Using cache":
            self.cached += 1


def stream_build(api: Any, request: BuildRequest, *, cancel: CancelToken | None = None) -> Iterator[BuildEvent]:
    """The build's events as they arrive; the last one is `BuildFinished`."""
    what = f"build of {request.app.name}"
    parser = _LogParser(request)
    kit_wheel = request.kit.wheel() if request.kit else None
    try:
        with tempfile.TemporaryFile() as context, AbortableStream(api, cancel), engine_errors(what):
            write_context(context, request.app.path, kit_wheel=kit_wheel, dockerfile=request.kit_dockerfile)
            chunks = api.build(  # a generator: closed below, whichever way the loop ends
                fileobj=context,
                custom_context=True,
                dockerfile=DOCKERFILE,
                tag=request.reference,
                buildargs=request.build_args,
                labels=request.labels,
                rm=True,
                forcerm=True,
                nocache=request.nocache,
                decode=True,
            )
            with contextlib.closing(chunks):
                for chunk in chunks:
                    _raise_if_cancelled(cancel, what)
                    yield from parser.feed(chunk)
    except Exception as exc:
        raise stream_failure(cancel, what, exc, cancel_hint=CANCEL_HINT) from None
    _raise_if_cancelled(cancel, what)
    yield from parser.finish()


CANCEL_HINT = "nothing was tagged; finished steps stay in the build cache"


def _raise_if_cancelled(cancel: CancelToken | None, what: str) -> None:
    if cancel is not None and cancel.cancelled:
        raise CancelledError(f"{what} cancelled", hint=CANCEL_HINT)


@dataclass
class _LogParser:
    """Turns docker-py's decoded build chunks into events (a `stream` chunk may hold part of a line)."""

    request: BuildRequest
    partial: str = ""
    step: BuildStep | None = None
    image_id: str = ""
    tail: list[str] = field(default_factory=list)

    def feed(self, chunk: Mapping[str, Any]) -> Iterator[BuildEvent]:
        if "error" in chunk or "errorDetail" in chunk:
            yield from self._flush()
            raise self._failure(chunk)
        if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
            self.image_id = str(chunk["aux"]["ID"])
        if "stream" in chunk:
            self.partial += str(chunk["stream"])
            *lines, self.partial = self.partial.split("\n")
            for line in lines:
                yield from self._line(line)
        elif "status" in chunk:
            where = f"{chunk['id']}: " if chunk.get("id") else ""
            yield BuildLog(f"{where}{chunk['status']} {chunk.get('progress', '')}".rstrip())

    def finish(self) -> Iterator[BuildEvent]:
        yield from self._flush()
        if not self.image_id:
            raise ImageBuildError(
                f"build of {self.request.app.name} ended without an image",
                hint="the engine stopped answering mid-build; build again",
            )
        yield BuildFinished(self.image_id)

    def _flush(self) -> Iterator[BuildEvent]:
        if self.partial:
            line, self.partial = self.partial, ""
            yield from self._line(line)

    def _line(self, line: str) -> Iterator[BuildEvent]:
        line = line.rstrip("\r")
        self.tail = [*self.tail[-4:], line]
        step = _STEP.match(line)
        if step:
            self.step = BuildStep(int(step[1]), int(step[2]), step[3])
            yield self.step
            return
        built = _BUILT.match(line)
        if built and not self.image_id:
            self.image_id = built[1]
        if line:
            yield BuildLog(line)

    def _failure(self, chunk: Mapping[str, Any]) -> ImageBuildError:
        detail = chunk.get("errorDetail") or {}
        message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
        app = self.request.app.name
        if self.step is None:
            return ImageBuildError(f"build of {app} failed: {message}", hint="fix the Dockerfile and build again")
        where = f"step {self.step.number}/{self.step.total} ({self.step.instruction})"
        hint = "the build log shows the step's output; fix the step or the app and build again"
        if self.step.instruction.upper().startswith("FROM"):
            hint = "the base image must exist on the engine or be pullable: pass --base-image or set images.base_image"
        return ImageBuildError(f"build of {app} failed at {where}: {message}", hint=hint)
