"""One deploy, as a visible pipeline: lock, gate, resolve, pull, artifacts, start, ready, switch, drain, record.

Each step reports `running` then `done` (or `failed`) with its duration; with several replicas start, ready,
switch and drain run once per replica (`services.deploy.rolling`: one at a time, new before old). The deploy
renews its lock's lease while it runs and stops before the next step (and before switching traffic) once it no
longer holds the lock. On any failure the new container's last log lines are captured, the replaced replicas
are routed again, the new containers and their API-key volumes are removed (nothing of the failed release
stays on the target), the old version keeps serving, our lock (and only ours) is released and the release is
recorded as failed.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from services.deploy import lock, ports, proxy, releases, volumes
from services.deploy.engine import connect_all
from services.deploy.rolling import Rollout, Slot
from services.deploy.serving import api_keys, container_resources
from services.deploy.target import AppSpec, Target, placement
from services.errors import DeployFailedError, NextStep, UsageError, WorkbenchError

if TYPE_CHECKING:
    from docker import DockerClient

    from services.artifacts.workspace import Artifacts

STEPS = ("lock", "gate", "resolve", "pull", "artifacts", "start", "ready", "switch", "drain", "record")
StepState = Literal["running", "done", "failed", "skipped"]


@dataclass(frozen=True)
class StepEvent:
    """A step changed state; `seconds` is its duration so far."""

    step: str
    state: StepState
    seconds: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class GateResult:
    """What the app's prompt suite said about the candidate."""

    passed: int
    failed: int
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy where."""

    target: Target
    app: str
    image: str
    """`registry/app:tag` (or `registry/app@sha256:...`)."""
    version: str
    registry_auth: dict[str, str] | None = field(default=None, repr=False)
    """docker-py `auth_config` for the registry (the password travels in the API request, never argv)."""
    gate: Callable[[], GateResult] | None = None
    artifact_refs: dict[str, str] | None = None
    """Pinned artifact references per mount (a redeploy of an old release); None: the target's settings."""
    rollback_of: str | None = None
    replicas: int | None = None
    """How many replicas to run (a rollback's redeploy: the release it restores had this many); None: the app's
    `replicas` setting."""


OnStep = Callable[[StepEvent], None]
Confirm = Callable[[str], bool]


def release_id() -> str:
    return f"r{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def container_name(app: str, version: str, rid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{app}-{version}-{rid[-4:]}")[:120]


def check_version(target: Target, version: str) -> None:
    """A `-dirty` build (uncommitted changes) never goes to a prod target."""
    from services.images.apps import is_deployable

    if not is_deployable(version, target.environment):
        raise UsageError(
            f"{version} was built from a tree with uncommitted changes; it cannot go to {target.name} (prod)",
            hint="commit, rebuild and push, then deploy the clean version",
        )


def deploy(
    request: DeployRequest,
    *,
    artifacts: Artifacts,
    actor: str,
    on_step: OnStep | None = None,
    confirm: Confirm | None = None,
) -> releases.Release:
    """Run the pipeline; the new release, or DeployFailedError (the old version still serving)."""
    check_version(request.target, request.version)
    run = DeployRun(request, artifacts, actor, on_step or (lambda event: None), confirm or (lambda question: False))
    with connect_all(request.target) as clients:
        return run.execute(clients)


class Steps:
    """Reports each step's start, end and duration; a failure names the step. `check` runs before each
    step (the lock's lease: a deploy that lost its lock goes no further)."""

    def __init__(self, on_step: OnStep, check: Callable[[], None] | None = None) -> None:
        self.on_step = on_step
        self.check = check

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Callable[[str], None]]:
        """Run a step; the yielded function sets the detail shown when it is done."""
        started = time.monotonic()
        detail = [""]
        self.on_step(StepEvent(name, "running"))
        try:
            if self.check is not None:
                self.check()
            yield lambda text: detail.__setitem__(0, text)
        except WorkbenchError as exc:
            self.on_step(StepEvent(name, "failed", time.monotonic() - started, exc.message))
            raise
        except Exception as exc:
            self.on_step(StepEvent(name, "failed", time.monotonic() - started, str(exc)[:300]))
            raise DeployFailedError(f"deploy step {name!r} failed: {str(exc)[:300]}") from exc
        self.on_step(StepEvent(name, "done", time.monotonic() - started, detail[0]))


class DeployRun:
    """The state of one deploy while it runs; `execute` runs it on an open engine client."""

    def __init__(self, request: DeployRequest, artifacts: Artifacts, actor: str, on_step: OnStep, confirm: Confirm):
        self.request = request
        self.artifacts = artifacts
        self.actor = actor
        self.on_step = on_step
        self.confirm = confirm
        self.spec: AppSpec = request.target.app(request.app)
        self.rid = release_id()
        self.name = container_name(request.app, request.version, self.rid)
        self.started = time.monotonic()
        self.bom: dict[str, Any] = {
            "image": request.image,
            "version": request.version,
            "target": request.target.name,
            "deployer": actor,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "artifacts": [],
        }
        if request.rollback_of:
            self.bom["rollback_of"] = request.rollback_of
        self.engines = placement(request.target, request.replicas or self.spec.replicas)
        self.names = (
            [self.name] if len(self.engines) == 1 else [f"{self.name}-{i + 1}" for i in range(len(self.engines))]
        )
        self.container: Any = None
        self.created: list[tuple[str, str]] = []
        self.rollout: Rollout | None = None
        self.lease: lock.Lease | None = None
        self.unchanged = 0
        """Artifact volumes this deploy did not hash again (sealed by an earlier full check, unchanged since)."""
        self.step = Steps(on_step, self._check_lease).step

    def execute(self, clients: dict[str, DockerClient]) -> releases.Release:
        """Run the pipeline on the target's open engine clients (engine to client, the proxy's first)."""
        req = self.request
        store = self.artifacts.store
        client = clients[req.target.docker_host]
        with self.step("lock"):
            image = _lock_image(client, req.target)
            releases.recover(clients, store, req.target, req.app, self.confirm)
            self.lease = lock.acquire(client, req.app, owner=self.actor, version=req.version, image=image,
                                      release=self.rid, containers=[self.name])  # fmt: skip
        releases.begin(store, self.rid, req.app, req.target.name, req.version, self.actor, self.bom)
        try:
            with self.lease.kept(client):
                return self._steps(clients)
        except BaseException as exc:
            self._fail(clients, exc)
            raise
        finally:
            with contextlib.suppress(Exception):  # the outcome is decided; a stale lock is offered for clearing
                self.lease.release(client)

    def _check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def _steps(self, clients: dict[str, DockerClient]) -> releases.Release:
        req = self.request
        client = clients[req.target.docker_host]
        self._gate()
        with self.step("resolve") as note:
            reference = _resolve(client, req.image, req.registry_auth)
            note(reference.split("@", 1)[1][:19])
        self.bom["digest"] = reference.split("@", 1)[1]
        hosts = list(dict.fromkeys(self.engines))
        with self.step("pull") as note:
            for engine in hosts:
                clients[engine].images.pull(reference, auth_config=req.registry_auth)
            note(f"on {len(hosts)} hosts" if len(hosts) > 1 else "")
        with self.step("artifacts") as note:
            mounts = self._mount_artifacts({e: clients[e] for e in hosts}, reference)
            note(self._artifacts_said(len(hosts)))
        self.rollout = Rollout(req.target, self.spec, clients, self.step, hold=lambda: self._hold(client))
        slots = [self._slot(e, n, reference, mounts[e]) for e, n in zip(self.engines, self.names, strict=True)]
        replicas = self.rollout.run(slots, on_serving=self._serving)
        with self.step("record"):
            self.bom["container"] = replicas[0].container
            self.bom["replicas"] = [
                {"container": r.container, "engine": r.engine, "server": r.server} for r in replicas
            ]
            self.bom["duration_s"] = round(time.monotonic() - self.started, 2)
            release = releases.finish(self.artifacts.store, self.rid, "live", self.bom)
            for engine in req.target.engines:
                live = {r.container for r in replicas if r.engine == engine}
                releases.prune(clients[engine], req.app, keep=req.target.keep, live=live)
        return release

    def _slot(self, engine: str, name: str, image: str, mounts: dict[str, dict[str, str]]) -> Slot:
        return Slot(engine, lambda client: self._start(client, engine, name, image, dict(mounts)))

    def _serving(self) -> None:
        self.bom["serving_after_s"] = round(time.monotonic() - self.started, 2)

    def _hold(self, client: DockerClient) -> None:
        """Renew the lease now: traffic moves only while this deploy provably holds the lock."""
        if self.lease is not None:
            self.lease.renew(client)

    def _gate(self) -> None:
        if self.request.gate is None:
            self.on_step(StepEvent("gate", "skipped", detail="no suite configured"))
            return
        with self.step("gate") as note:
            result = self.request.gate()
            self.bom["suite"] = {"passed": result.passed, "failed": result.failed, "run_id": result.run_id}
            note(f"{result.passed} passed, {result.failed} failed")
            if not result.ok:
                raise DeployFailedError(
                    f"the prompt suite failed ({result.failed} of {result.passed + result.failed} cases)",
                    step=NextStep.of("eval.show", run_id=result.run_id) if result.run_id else None,
                )

    def _mount_artifacts(self, clients: dict[str, DockerClient], image: str) -> dict[str, dict[str, dict[str, str]]]:
        """Each host's artifact volumes of the release as mounts (engine to volume to mount): fetched here once,
        checked on the hosts in parallel (`volumes.mount_artifacts`); the artifacts and the volumes' seals go
        into the bill of materials."""
        from concurrent.futures import ThreadPoolExecutor

        from services.artifacts.model import parse_ref

        refs = self.request.artifact_refs if self.request.artifact_refs is not None else self.spec.artifacts
        fetched = {mount: _fetch(self.artifacts, parse_ref(ref)) for mount, ref in refs.items()}
        self.bom["artifacts"] = [
            {"mount": mount, "ref": refs[mount], "kind": manifest.kind, "name": manifest.name,
             "version": manifest.version, "digest": manifest.digest(), "base_model": manifest.lineage.get("base_model")}
            for mount, (manifest, _) in fetched.items()
        ]  # fmt: skip
        sealed = releases.recorded_seals(self.artifacts.store, self.request.app, self.request.target.name)
        wanted = list(fetched.values())

        def check(engine: str) -> list[volumes.Mounted]:
            return volumes.mount_artifacts(clients[engine], image, wanted, sealed=sealed.get(engine, {}))

        with ThreadPoolExecutor(max_workers=len(clients), thread_name_prefix="wb-artifacts") as pool:
            done = dict(zip(clients, pool.map(check, clients), strict=True))
        self.bom["seals"] = {engine: {m.volume: m.seal for m in found} for engine, found in done.items()}
        self.unchanged = sum(not m.hashed for found in done.values() for m in found)
        return {
            engine: {
                m.volume: {"bind": f"/artifacts/{mount}", "mode": "ro"} for mount, m in zip(fetched, found, strict=True)
            }
            for engine, found in done.items()
        }

    def _artifacts_said(self, hosts: int) -> str:
        """The artifacts step's detail: the versions, and how many volumes were not hashed again."""
        said = ", ".join(f"{a['name']}@{a['version']}" for a in self.bom["artifacts"]) or "none"
        total = len(self.bom["artifacts"]) * hosts
        return said + (f" ({self.unchanged} of {total} unchanged since verified)" if self.unchanged else "")

    def _start(
        self, client: DockerClient, engine: str, name: str, image: str, mounts: dict[str, dict[str, str]]
    ) -> Any:
        """Create replica `name` on `engine` (tracked at once, so a failed start removes it and its keys), then
        start it (`_run`)."""
        req, spec = self.request, self.spec
        proxy.ensure_network(client)
        proxy.tls_files(req.target)  # a bad certificate or key fails here, before anything starts
        environment = dict(spec.env)
        keys = api_keys(spec)
        self.created.append((engine, name))
        if keys:
            secrets = volumes.secrets_volume(client, image, name, keys)
            mounts[secrets] = {"bind": volumes.SECRETS_DEST, "mode": "ro"}
            environment[spec.api_keys_file_env] = f"{volumes.SECRETS_DEST}/api_keys"
        labels = {
            "workbench.role": "app",
            "workbench.app": req.app,
            "workbench.version": req.version,
            "workbench.digest": self.bom["digest"],
            "workbench.release": self.rid,
            "workbench.deployer": self.actor,
            "workbench.artifacts": json.dumps([f"{a['name']}@{a['version']}" for a in self.bom["artifacts"]]),
            "workbench.bom": json.dumps(self.bom, sort_keys=True),
        }
        options: dict[str, Any] = {
            "network": proxy.NETWORK,
            "environment": environment,
            "volumes": mounts,
            "labels": labels,
            "restart_policy": {"Name": "unless-stopped"},
            **container_resources(spec),
        }
        return self._run(client, image, name, remote=engine != req.target.docker_host, options=options)

    def _run(self, client: DockerClient, image: str, name: str, *, remote: bool, options: dict[str, Any]) -> Any:
        """Create and start container `name`; on another host than the proxy's its port is published on a host
        port chosen here and pinned (`services.deploy.ports`), another one drawn when that one is taken."""
        from docker.errors import APIError

        taken = ports.taken_ports(client) if remote else set()
        for attempt in range(ports.TRIES):
            port = ports.pick_port(taken) if remote else None
            binding = {f"{self.spec.container_port}/tcp": port} if port else None
            self.container = client.containers.create(image, name=name, ports=binding, **options)
            try:
                self.container.start()
            except APIError as exc:
                if port is None or not ports.port_conflict(exc) or attempt == ports.TRIES - 1:
                    raise
                taken.add(port)
                self.container.remove(force=True)
                continue
            return self.container
        raise AssertionError("unreachable: the last try raises")

    def _fail(self, clients: dict[str, DockerClient], exc: BaseException) -> None:
        logs = ""
        if self.container is not None:
            with contextlib.suppress(Exception):
                logs = self.container.logs(tail=40).decode(errors="replace")
        with contextlib.suppress(Exception):  # the failure is what the user must see, not a cleanup error
            if self.rollout is not None:
                self.rollout.undo()  # the replaced replicas serve again before ours go
        routed = self.rollout.routed() if self.rollout is not None else set()
        for engine, name in self.created:  # ours alone: the names carry this release's id
            if name not in routed:
                with contextlib.suppress(Exception):
                    releases.remove_container(clients[engine], name)
        self.bom["error"] = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        self.bom["logs"] = logs[-4000:]
        self.bom["duration_s"] = round(time.monotonic() - self.started, 2)
        releases.finish(self.artifacts.store, self.rid, "failed", self.bom)
        if isinstance(exc, DeployFailedError) and logs and not exc.logs:
            exc.logs = logs


def _lock_image(client: DockerClient, target: Target) -> str:
    """An image the target has, for the lock container: the proxy's (pulled when missing)."""
    from docker.errors import ImageNotFound

    try:
        client.images.get(target.proxy_image)
    except ImageNotFound:
        client.images.pull(target.proxy_image)
    return target.proxy_image


def _resolve(client: DockerClient, image: str, auth: dict[str, str] | None) -> str:
    """`repository@sha256:...` for `image`, asked of the registry by the target's engine."""
    if "@sha256:" in image:
        return image
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    data = client.images.get_registry_data(image, auth_config=auth)
    return f"{repository}@{data.id}"


def _fetch(artifacts: Artifacts, ref: Any) -> tuple[Any, Any]:
    """The manifest and workspace folder of `ref`: pulled (verified) from remote storage when there is one."""
    from services.artifacts.model import Ref
    from services.errors import NotFoundError

    try:
        remote = artifacts.remote
    except NotFoundError:
        manifest = artifacts.local.resolve(ref)
    else:
        manifest = remote.resolve(ref)
        artifacts.pull(Ref(manifest.name, version=manifest.version))
    return manifest, artifacts.folder(manifest)
