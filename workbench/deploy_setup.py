"""From settings to a deploy: target, image reference, registry login, the suite gate (CLI and Deploy mode)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.deploy.pipeline import DeployRequest, GateResult
    from workbench.settings import Settings


def deploy_request(settings: Settings, app: str, target_name: str, *, version: str | None, gate: bool) -> DeployRequest:
    """Everything a deploy of `app` (at `version`, default: what git says the app is now) to a target needs."""
    from services.deploy.pipeline import DeployRequest
    from services.images.apps import image_reference
    from workbench.settings import deploy_target

    target = deploy_target(settings, target_name)
    spec = target.app(app)
    version = version or app_version(settings, app)
    registry = target.registry or settings.registry.login_server
    suite = suite_gate(settings, spec.suite) if gate and spec.suite else None
    return DeployRequest(
        target, app, image_reference(registry, app, version), version, registry_auth=registry_auth(settings), gate=suite
    )


def app_version(settings: Settings, app: str) -> str:
    """The version `workbench image build` tags the app with now (git describe + short sha, `-dirty`
    also when the app kit its image holds has uncommitted changes)."""
    from services.images.apps import discover_apps, find_app
    from workbench.image_setup import images_config

    config = images_config(settings)
    return config.version(find_app(discover_apps(config.apps_dir, config.app_dirs), app)).version


def registry_auth(settings: Settings) -> dict[str, str] | None:
    """docker-py `auth_config` for the registry (None: pull anonymously); the secret stays out of argv."""
    from services.images.registry import resolve_credentials
    from workbench.image_setup import registry_access

    if not settings.registry.login_server:
        return None
    credentials = resolve_credentials(registry_access(settings))
    return credentials.auth_config() if credentials else None


def suite_gate(settings: Settings, suite: Path) -> Callable[[], GateResult]:
    """A gate that runs the app's prompt suite (stored like `workbench eval run`) and reports its counts."""

    def gate() -> GateResult:
        from services.chat.session import ChatEngine
        from services.deploy.pipeline import GateResult
        from services.evals.runner import run_suite
        from services.evals.runs import save_run
        from services.evals.suite import load_suite
        from services.rag.chroma import open_client
        from services.store import Store
        from workbench.settings import chat_endpoints, hub_connection

        engine = ChatEngine(
            cache_dir=hub_connection(settings).cache_path,
            rag_client_factory=lambda: open_client(settings.rag, data_dir=settings.workspace.data_dir),
            endpoints=chat_endpoints(settings),
        )
        try:
            run = run_suite(load_suite(suite), engine=engine)
        finally:
            engine.close()
        save_run(Store(settings.workspace.data_dir), run)
        passed, failed = run.counts()
        return GateResult(passed, failed, run.id)

    return gate
