"""`infra up`: quota pre-flight, resource group, validation, then the deployment, polled operation by operation.

Also the outputs of an environment's last deployment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.errors import CancelledError, DeploymentFailedError, NextStep, NotFoundError, QuotaError
from services.infra.arm.errors import ErrorInfo, arm_errors, details_of, error_info, hint_for, info_of, step_for
from services.infra.arm.groups import ensure_group
from services.infra.arm.quota import check_quota
from services.infra.arm.session import AzureTarget, Session, as_dict, connect, deployment_name
from services.infra.arm.whatif import deployment_body, validate_remote
from services.infra.inputs import InfraInputs
from services.progress import CancelToken


@dataclass(frozen=True)
class Operation:
    """One deployment operation: a resource being created, and its state."""

    id: str
    resource_type: str
    resource_name: str
    operation: str
    state: str
    status_code: str | None = None
    error: ErrorInfo | None = None
    duration: str | None = None

    @property
    def label(self) -> str:
        return f"{self.resource_type} {self.resource_name}".strip()


@dataclass(frozen=True)
class DeployProgress:
    """What a running `up` reports: the phase, a line of text and the operations so far."""

    phase: str
    """quota, resource group, validate, deploy or done."""
    message: str
    operations: tuple[Operation, ...] = ()
    changed: tuple[Operation, ...] = ()
    """Operations whose state changed since the previous report."""


@dataclass(frozen=True)
class DeployResult:
    """A finished deployment: its outputs (values only) and operations."""

    deployment: str
    resource_group: str
    outputs: dict[str, Any]
    operations: tuple[Operation, ...]
    seconds: float


OnProgress = Callable[[DeployProgress], None]


def provision(
    target: AzureTarget,
    inputs: InfraInputs,
    *,
    on_progress: OnProgress | None = None,
    cancel: CancelToken | None = None,
    check_gpu_quota: bool = True,
) -> DeployResult:
    """`workbench infra up`: quota pre-flight, resource group, ARM validation, then the deployment.

    Reports each operation as its state changes; a failed deployment raises `DeploymentFailedError`
    listing the failed operations (code, message, target). Cancelling asks ARM to cancel the
    deployment and raises `CancelledError`.
    """
    report = on_progress or (lambda _progress: None)
    session = connect(target)
    if check_gpu_quota:
        report(DeployProgress("quota", f"checking vCPU quota in {target.location}"))
        quota = check_quota(session, inputs.vm_sizes())
        if not quota.ok:
            raise QuotaError(
                "not enough quota for this deployment: " + "; ".join(quota.problems),
                hint="request an increase in the Azure portal (Quotas > Compute) or choose other VM sizes",
            )
    report(DeployProgress("resource group", f"resource group {session.group} in {target.location}"))
    ensure_group(session, inputs.env)
    report(DeployProgress("validate", "ARM validation"))
    validate_remote(session, inputs)
    return _deploy(session, inputs, report, cancel or CancelToken())


def _deploy(session: Session, inputs: InfraInputs, report: OnProgress, cancel: CancelToken) -> DeployResult:
    name = deployment_name(inputs.env)
    started = time.monotonic()
    with arm_errors(f"starting deployment {name} in {session.group}"):
        poller = session.deployments.deployments.begin_create_or_update(session.group, name, deployment_body(inputs))
    seen: dict[str, Operation] = {}
    report(DeployProgress("deploy", f"deploying {name}"))
    while not poller.done():
        if cancel.cancelled:
            _cancel(session, name)
        _wait(poller, session.target.poll_seconds)
        seen = _report_operations(session, name, seen, report)
    failure = _poller_failure(poller)
    operations = tuple(_report_operations(session, name, seen, report).values())
    final = _final_state(session, name)  # the poller's last body may be a status, not the deployment
    state = (final.get("properties") or {}).get("provisioningState")
    if failure is None and state != "Succeeded":
        failure = info_of((final.get("properties") or {}).get("error")) or ErrorInfo(
            f"Deployment{state}", f"the deployment ended {state}"
        )
    if failure is not None:
        raise _failed(name, session.group, failure, operations)
    outputs = _outputs_of(final)
    report(DeployProgress("done", f"deployed {name}", operations))
    return DeployResult(name, session.group, outputs, operations, time.monotonic() - started)


def _wait(poller: Any, seconds: float) -> None:
    """Wait for the poller up to `seconds`; a failure is read afterwards from `poller.result()`."""
    from azure.core.exceptions import HttpResponseError

    try:
        poller.wait(seconds)
    except HttpResponseError:
        return


def _cancel(session: Session, name: str) -> None:
    with arm_errors(f"cancelling deployment {name}"):
        session.deployments.deployments.cancel(session.group, name)
    raise CancelledError(
        f"deployment {name} in {session.group} cancelled",
        hint="resources created so far stay; run `up` again to finish, or `down` to remove them",
    )


def _poller_failure(poller: Any) -> Exception | ErrorInfo | None:
    from azure.core.exceptions import HttpResponseError

    try:
        poller.result()
    except HttpResponseError as exc:
        return exc
    return None


def _final_state(session: Session, name: str) -> dict[str, Any]:
    with arm_errors(f"reading deployment {name}"):
        return as_dict(session.deployments.deployments.get(session.group, name))


def _failed(
    name: str, group: str, failure: Exception | ErrorInfo, operations: tuple[Operation, ...]
) -> DeploymentFailedError:
    info = failure if isinstance(failure, ErrorInfo) else error_info(failure)
    info = info or ErrorInfo("DeploymentFailed", "the deployment failed")
    failed = [op for op in operations if op.state == "Failed"]
    lines = tuple(f"{op.label}: {op.error or op.status_code}" for op in failed)
    code = failed[0].error.code if failed and failed[0].error else info.code
    return DeploymentFailedError(
        f"deployment {name} in {group} failed: {info}" + "".join(f"\n  failed: {line}" for line in lines),
        hint=hint_for(code) or "fix the failed resources, then deploy again (finished resources are kept)",
        step=step_for(code) or (None if hint_for(code) else NextStep("infra.up")),
        code=info.code,
        target=info.target,
        details=lines,
    )


def operations(session: Session, name: str) -> list[Operation]:
    """The deployment's operations as ARM lists them now (resource, operation, state, error)."""
    with arm_errors(f"listing operations of deployment {name}"):
        raw = [as_dict(op) for op in session.deployments.deployment_operations.list(session.group, name)]
    return [_operation(op) for op in raw if ((op.get("properties") or {}).get("targetResource"))]


def _operation(raw: Mapping[str, Any]) -> Operation:
    props = raw.get("properties") or {}
    target = props.get("targetResource") or {}
    status = props.get("statusMessage") or {}
    error = status.get("error") if isinstance(status, Mapping) else None
    inner = details_of(error) if isinstance(error, Mapping) else []
    info = inner[0] if inner else info_of(error)
    if info is not None and not info.target and target.get("id"):
        info = ErrorInfo(info.code, info.message, str(target["id"]))
    return Operation(
        id=str(raw.get("operationId") or raw.get("id", "")),
        resource_type=str(target.get("resourceType", "")),
        resource_name=str(target.get("resourceName", "")),
        operation=str(props.get("provisioningOperation", "")),
        state=str(props.get("provisioningState", "")),
        status_code=props.get("statusCode"),
        error=info,
        duration=props.get("duration"),
    )


def _report_operations(
    session: Session, name: str, seen: dict[str, Operation], report: OnProgress
) -> dict[str, Operation]:
    current = {op.id: op for op in operations(session, name)}
    changed = tuple(op for op_id, op in current.items() if seen.get(op_id) != op)
    if changed:
        done = sum(1 for op in current.values() if op.state in {"Succeeded", "Failed"})
        report(DeployProgress("deploy", f"{done}/{len(current)} operations finished", tuple(current.values()), changed))
    return {**seen, **current}


def deployment_outputs(target: AzureTarget, env: str) -> dict[str, Any]:
    """The outputs of the environment's last deployment (values only)."""
    session = connect(target)
    name = deployment_name(env)
    with arm_errors(f"reading deployment {name} in {session.group}"):
        deployment = as_dict(session.deployments.deployments.get(session.group, name))
    state = (deployment.get("properties") or {}).get("provisioningState")
    if state != "Succeeded":
        raise NotFoundError(
            f"deployment {name} in {session.group} is {state or 'unknown'}, so it has no outputs",
            step=NextStep.of("infra.up", env=env),
        )
    return _outputs_of(deployment)


def _outputs_of(deployment: Mapping[str, Any]) -> dict[str, Any]:
    outputs = (deployment.get("properties") or {}).get("outputs") or {}
    return {name: entry.get("value") if isinstance(entry, Mapping) else entry for name, entry in outputs.items()}
