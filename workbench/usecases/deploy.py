"""Deploy verbs: build a deploy request, deploy, roll back, read the targets' status."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.deploy.pipeline import Confirm, DeployRequest, GateResult, OnStep
    from services.deploy.releases import AppStatus, Release
    from workbench.wiring import Services


def deploy_request(services: Services, app: str, target_name: str, *, version: str | None, gate: bool) -> DeployRequest:
    """Everything a deploy of `app` (at `version`, default: what git says the app is now) to a target needs;
    refuses a version the target does not take (e.g. `-dirty` on prod) before anything is asked."""
    from services.deploy.pipeline import DeployRequest, check_version
    from services.images.apps import image_reference

    target = services.deploy_target(target_name)
    spec = target.app(app)
    version = version or app_version(services, app)
    check_version(target, version)
    registry = target.registry or services.settings.registry.login_server
    suite = suite_gate(services, spec.suite) if gate and spec.suite else None
    return DeployRequest(
        target,
        app,
        image_reference(registry, app, version),
        version,
        registry_auth=services.registry_auth(),
        gate=suite,
    )


def deploy(
    services: Services, request: DeployRequest, *, on_step: OnStep | None = None, confirm: Confirm | None = None
) -> Release:
    """Run the deploy pipeline for `request`, recorded under the workspace's actor."""
    from services.deploy.pipeline import deploy as run_deploy

    artifacts = services.artifacts()
    return run_deploy(request, artifacts=artifacts, actor=artifacts.actor, on_step=on_step, confirm=confirm)


def rollback(
    services: Services, app: str, target_name: str, *, to: str | None = None, on_step: OnStep | None = None
) -> Release:
    """Serve the release `to` (default: the one before the live one) of `app` on the target again."""
    from services.deploy.rollback import rollback as run_rollback

    artifacts = services.artifacts()
    target = services.deploy_target(target_name)
    auth = services.registry_auth()
    return run_rollback(
        target, app, artifacts=artifacts, actor=artifacts.actor, to=to, registry_auth=auth, on_step=on_step
    )


def status(services: Services, target_names: Sequence[str] = (), *, log_lines: int = 5) -> list[AppStatus]:
    """Each app's serving version, health and recent releases on each target (default: every configured one)."""
    from services.deploy import releases
    from services.deploy.engine import connect

    store = services.artifacts().store
    found: list[AppStatus] = []
    for name in target_names or services.configured_targets():
        target = services.deploy_target(name)
        with connect(target) as client:
            found += [releases.status(client, store, target, app, log_lines=log_lines) for app in target.apps]
    return found


def app_version(services: Services, app: str) -> str:
    """The version `workbench image build` tags the app with now (git describe + short sha, `-dirty`
    also when the app kit its image holds has uncommitted changes)."""
    from services.images.apps import discover_apps, find_app

    config = services.images_config()
    return config.version(find_app(discover_apps(config.apps_dir, config.app_dirs), app)).version


def suite_gate(services: Services, suite: Path) -> Callable[[], GateResult]:
    """A gate that runs the app's prompt suite (stored like `workbench eval run`) and reports its counts."""

    def gate() -> GateResult:
        from services.deploy.pipeline import GateResult
        from services.evals.runner import run_suite
        from services.evals.runs import save_run
        from services.evals.suite import load_suite

        engine = services.chat_engine()
        try:
            run = run_suite(load_suite(suite), engine=engine)
        finally:
            engine.close()
        save_run(services.store(), run)
        passed, failed = run.counts()
        return GateResult(passed, failed, run.id)

    return gate
