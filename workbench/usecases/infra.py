"""Infra verbs: validate an environment, provision it and save its outputs into the user settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.infra.arm.deployment import DeployResult, OnProgress
    from services.infra.findings import ValidationReport
    from services.infra.inputs import InfraInputs
    from services.progress import CancelToken
    from workbench.wiring import Services

OnReport = Callable[["ValidationReport"], None]


@dataclass(frozen=True)
class Provisioned:
    """A deployed environment and what was written into the user settings from its outputs."""

    result: DeployResult
    settings_file: Path
    written: list[str]
    """Dotted settings keys written (`targets.dev.host`, `registry.login_server`, ...)."""


def validate(
    services: Services, env: str, *, overrides: Mapping[str, str] | None = None, deploy: bool = False
) -> tuple[InfraInputs, ValidationReport]:
    """Load and validate one environment offline (templates, parameters, cloud-init, our policies)."""
    from services.infra.templates import validate_environment

    azure = services.settings.azure
    return validate_environment(
        infra_dir=azure.infra_dir,
        env=env,
        params_dir=azure.params_dir,
        overrides=overrides,
        ssh_public_key=azure.ssh_public_key,
        deploy=deploy,
    )


def checked_inputs(
    services: Services, env: str, *, overrides: Mapping[str, str] | None = None, on_report: OnReport | None = None
) -> InfraInputs:
    """The environment's deploy inputs; `on_report` sees the validation report first, then errors or
    policy violations refuse."""
    from services.infra.templates import require_valid

    inputs, report = validate(services, env, overrides=overrides, deploy=True)
    if on_report is not None:
        on_report(report)
    require_valid(report)
    return inputs


def provision(
    services: Services,
    env: str,
    inputs: InfraInputs,
    *,
    on_progress: OnProgress | None = None,
    cancel: CancelToken | None = None,
    check_gpu_quota: bool = True,
) -> Provisioned:
    """Deploy the environment, then write its targets, registry and storage into the user settings."""
    from services.infra import arm
    from workbench.config.writing import save_infra_outputs

    target = services.azure_target(env)
    result = arm.provision(target, inputs, on_progress=on_progress, cancel=cancel, check_gpu_quota=check_gpu_quota)
    path, written = save_infra_outputs(env=env, outputs=result.outputs)
    return Provisioned(result, path, written)
