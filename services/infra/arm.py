"""Azure Resource Manager through the real SDK clients: credentials, GPU quota, what-if, deploy, outputs, delete.

Clients: `azure-mgmt-resource`'s `ResourceManagementClient` for resource groups,
`azure-mgmt-resource-deployments`' `DeploymentsMgmtClient` for validate, what-if, create (long-running,
polled) and deployment operations. The compute quota (resource SKUs and regional usages) is two
GET requests sent through the resource client's own pipeline (`send_request`: same credential,
retries and endpoint), instead of adding azure-mgmt-compute (14 MB) for two calls.

Credentials come from `DefaultAzureCredential` (Azure CLI login, managed identity, or a service
principal in AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET) and never from settings.
Errors from the SDK are translated into `services.errors` without the credential's own text, so a
secret can never reach a message.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import (
    ArmError,
    AzureUnavailableError,
    CancelledError,
    ConfigError,
    CredentialsError,
    DeploymentFailedError,
    NotFoundError,
    QuotaError,
)
from services.infra.templates import InfraInputs
from services.progress import CancelToken

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient

PUBLIC_ENDPOINT = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
SKUS_API = "2021-07-01"
USAGES_API = "2024-07-01"
LOGIN_HINT = (
    "log in with the Azure CLI (`az login`), run on a VM with a managed identity, or set "
    "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET for a service principal"
)
CHANGE_WORDS = {
    "Create": "create",
    "Modify": "modify",
    "Delete": "delete",
    "NoChange": "no change",
    "Ignore": "ignore",
    "Deploy": "deploy",
    "Unsupported": "unsupported",
}


@dataclass(frozen=True)
class AzureTarget:
    """Where an environment lives in Azure and how to reach ARM; built from settings by the caller."""

    subscription_id: str | None
    resource_group: str
    location: str
    endpoint: str | None = None
    """ARM base URL; None is the public cloud."""
    ca_bundle: Path | None = None
    """CA file to trust for `endpoint` (a local test server); None uses the system store."""
    poll_seconds: float = 10.0
    """Seconds between status checks when ARM does not send Retry-After."""
    credential: Any = field(default=None, repr=False, compare=False)
    """A TokenCredential to use instead of DefaultAzureCredential (tests, scripts)."""


@dataclass(frozen=True)
class ErrorInfo:
    """ARM's error: code, message and the resource it concerns."""

    code: str
    message: str
    target: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" (target: {self.target})" if self.target else "")


@dataclass(frozen=True)
class QuotaRow:
    """vCPUs a deployment needs from one quota (a VM family, or the regional total) and what is free."""

    quota: str
    label: str
    needed: int
    used: int
    limit: int

    @property
    def free(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def ok(self) -> bool:
        return self.needed <= self.free


@dataclass(frozen=True)
class QuotaReport:
    """The quota check before a deployment: one row per family plus the regional total."""

    location: str
    rows: tuple[QuotaRow, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ResourceChange:
    """One resource in a what-if result."""

    change: str
    """create, modify, delete, no change, ignore, deploy or unsupported."""
    resource_type: str
    name: str
    resource_id: str
    properties: tuple[str, ...] = ()
    """Changed property paths for a modify, e.g. `~ properties.hardwareProfile.vmSize`."""


@dataclass(frozen=True)
class WhatIfResult:
    """What a deployment would change; `group_exists` False means everything is created."""

    resource_group: str
    group_exists: bool
    changes: tuple[ResourceChange, ...]

    def count(self, change: str) -> int:
        return sum(1 for c in self.changes if c.change == change)


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


def deployment_name(env: str) -> str:
    """The deployment's name in the resource group: one per environment, replaced by each `up`."""
    return f"llm-workbench-{env}"


# ---------------------------------------------------------------- credentials and clients


def default_credential() -> TokenCredential:
    """Azure CLI login, managed identity or an environment service principal, in the SDK's order."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def credential_for(target: AzureTarget) -> TokenCredential:
    """The target's credential, checked by fetching a token; `CredentialsError` with how to log in otherwise."""
    _quiet_sdk_logging()
    credential = target.credential if target.credential is not None else default_credential()
    try:
        credential.get_token(ARM_SCOPE)
    except Exception:  # any failure to get a token; its text may describe the credential, so it is dropped
        raise CredentialsError("no usable Azure credentials found", hint=LOGIN_HINT) from None
    return credential


def _quiet_sdk_logging() -> None:
    """The SDK logs credential attempts as warnings; without a handler Python would print them."""
    logger = logging.getLogger("azure")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def subscription_of(target: AzureTarget) -> str:
    """The subscription id from the target, else `AZURE_SUBSCRIPTION_ID`."""
    subscription = target.subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        raise ConfigError(
            "no Azure subscription set",
            hint="set azure.subscription_id (or AZURE_SUBSCRIPTION_ID); `az account show --query id` prints yours",
        )
    return subscription


def _client_options(target: AzureTarget) -> dict[str, Any]:
    options: dict[str, Any] = {
        "base_url": target.endpoint or PUBLIC_ENDPOINT,
        "credential_scopes": [ARM_SCOPE],
        "polling_interval": target.poll_seconds,
        "connection_timeout": 15,
        "read_timeout": 120,
    }
    if target.ca_bundle is not None:
        options["connection_verify"] = str(target.ca_bundle)
    return options


@dataclass
class Session:
    """Both SDK clients for one target, sharing one checked credential."""

    target: AzureTarget
    resources: ResourceManagementClient
    deployments: DeploymentsMgmtClient

    @property
    def group(self) -> str:
        return self.target.resource_group


def connect(target: AzureTarget) -> Session:
    """Check the credential and the subscription, then build the clients (no request sent yet but the token)."""
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    credential = credential_for(target)
    subscription = subscription_of(target)
    options = _client_options(target)
    return Session(
        target,
        ResourceManagementClient(credential, subscription, **options),
        DeploymentsMgmtClient(credential, subscription, **options),
    )


# ---------------------------------------------------------------- errors


@contextmanager
def arm_errors(what: str) -> Iterator[None]:
    """Translate SDK exceptions raised while doing `what` into workbench errors (code, message, target)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ClientAuthenticationError as exc:
        info = error_info(exc)
        detail = f": {info}" if info else ""
        raise CredentialsError(f"Azure refused the credentials while {what}{detail}", hint=LOGIN_HINT) from None
    except ResourceNotFoundError as exc:
        info = error_info(exc) or ErrorInfo("NotFound", "not found")
        raise NotFoundError(f"{what}: {info}", hint=_hint(info.code)) from None
    except HttpResponseError as exc:
        raise arm_error(what, exc) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise AzureUnavailableError(
            f"cannot reach Azure Resource Manager while {what}: {type(exc).__name__}",
            hint="check the network (and azure.arm_endpoint / azure.ca_bundle if set)",
        ) from None


def arm_error(what: str, exc: Any) -> ArmError:
    """An `ArmError` from an SDK `HttpResponseError`, its details flattened into lines."""
    body = _error_body(exc)
    info = _info(body) or ErrorInfo(str(getattr(exc, "status_code", "error")), str(getattr(exc, "reason", "failed")))
    details = tuple(str(d) for d in _details(body))
    return ArmError(f"{what}: {info}", hint=_hint(info.code), code=info.code, target=info.target, details=details)


def error_info(exc: Any) -> ErrorInfo | None:
    """ARM's error code, message and target from an SDK exception, if its response has them."""
    return _info(_error_body(exc))


def _error_body(exc: Any) -> dict[str, Any]:
    response = getattr(exc, "response", None)
    try:
        data = response.json() if response is not None else None
    except Exception:  # not JSON: no ARM error body
        return {}
    if isinstance(data, dict):
        inner = data.get("error", data)
        return inner if isinstance(inner, dict) else {}
    return {}


def _info(body: Mapping[str, Any] | None) -> ErrorInfo | None:
    if not body or not body.get("code"):
        return None
    return ErrorInfo(str(body["code"]), str(body.get("message", "")).strip(), body.get("target") or None)


def _details(body: Mapping[str, Any]) -> list[ErrorInfo]:
    found = []
    for detail in body.get("details") or []:
        info = _info(detail) if isinstance(detail, Mapping) else None
        nested = _details(detail) if isinstance(detail, Mapping) else []
        found += nested or ([info] if info else [])
    return found


HINTS = {
    "AuthorizationFailed": "the identity needs Contributor and User Access Administrator (for role assignments)",
    "InvalidTemplate": "run `workbench infra validate` and fix the template",
    "InvalidTemplateDeployment": "the details say which resource and setting Azure refused",
    "ResourceGroupNotFound": "run `workbench infra up` to create it",
    "DeploymentNotFound": "run `workbench infra up` first",
    "QuotaExceeded": "request a quota increase in the Azure portal (Quotas), or pick a smaller VM size",
    "SkuNotAvailable": "pick another VM size or region (devVmSize / deployVmSize, azure.location)",
}


def _hint(code: str | None) -> str | None:
    return HINTS.get(code or "")


# ---------------------------------------------------------------- quota


def check_quota(session: Session, sizes: list[str]) -> QuotaReport:
    """vCPU quota for `sizes` in the target's region: per VM family and the regional total.

    Sizes that the region does not offer to this subscription are problems too.
    """
    location = session.target.location
    with arm_errors(f"reading VM sizes and quota in {location}"):
        skus = {s["name"]: s for s in _vm_skus(session, location) if s.get("name") in set(sizes)}
        usages = {u["name"]["value"].lower(): u for u in _usages(session, location)}
    problems = [f"VM size {size} is not offered in {location}" for size in sizes if size not in skus]
    problems += [_restriction(size, skus[size], location) for size in sizes if size in skus and _restricted(skus[size])]
    rows = _quota_rows(sizes, skus, usages)
    problems += [
        f"{row.label}: needs {row.needed} vCPUs, {row.free} of {row.limit} free in {location}"
        for row in rows
        if not row.ok
    ]
    return QuotaReport(location, tuple(rows), tuple(problems))


def _vm_skus(session: Session, location: str) -> list[dict[str, Any]]:
    path = f"/subscriptions/{subscription_of(session.target)}/providers/Microsoft.Compute/skus"
    params = {"api-version": SKUS_API, "$filter": f"location eq '{location}'"}
    return [s for s in _paged_get(session, path, params) if s.get("resourceType") == "virtualMachines"]


def _usages(session: Session, location: str) -> list[dict[str, Any]]:
    path = f"/subscriptions/{subscription_of(session.target)}/providers/Microsoft.Compute/locations/{location}/usages"
    return [u for u in _paged_get(session, path, {"api-version": USAGES_API}) if isinstance(u.get("name"), dict)]


def _paged_get(session: Session, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    request: HttpRequest | None = HttpRequest("GET", path, params=params)
    while request is not None:
        response = session.resources.send_request(request)
        if response.status_code != 200:
            raise HttpResponseError(response=response)
        page = response.json()
        yield from page.get("value") or []
        next_link = page.get("nextLink")
        request = HttpRequest("GET", next_link) if next_link else None


def _restricted(sku: Mapping[str, Any]) -> bool:
    return any(r.get("reasonCode") == "NotAvailableForSubscription" for r in sku.get("restrictions") or [])


def _restriction(size: str, sku: Mapping[str, Any], location: str) -> str:
    return f"VM size {size} is not available to this subscription in {location} (restricted)"


def _vcpus(sku: Mapping[str, Any]) -> int:
    caps = {c.get("name"): c.get("value") for c in sku.get("capabilities") or []}
    return int(caps.get("vCPUs") or 0)


def _quota_rows(sizes: list[str], skus: Mapping[str, Any], usages: Mapping[str, Any]) -> list[QuotaRow]:
    needed: dict[str, int] = {}
    for size in sizes:
        if size in skus:
            family = str(skus[size].get("family", ""))
            needed[family] = needed.get(family, 0) + _vcpus(skus[size])
    needed["cores"] = sum(needed.values())
    rows = []
    for quota, count in needed.items():
        usage = usages.get(quota.lower())
        if usage is None:
            continue
        label = str(usage["name"].get("localizedValue") or quota)
        rows.append(QuotaRow(quota, label, count, int(usage.get("currentValue", 0)), int(usage.get("limit", 0))))
    return rows


# ---------------------------------------------------------------- resource group


def group_exists(session: Session) -> bool:
    """True when the target's resource group exists."""
    with arm_errors(f"checking resource group {session.group}"):
        return bool(session.resources.resource_groups.check_existence(session.group))


def ensure_group(session: Session, env: str) -> None:
    """Create (or update the tags of) the target's resource group in its location."""
    body = {"location": session.target.location, "tags": {"app": "llm-workbench", "env": env}}
    with arm_errors(f"creating resource group {session.group}"):
        session.resources.resource_groups.create_or_update(session.group, body)  # type: ignore[arg-type]


def delete_group(session: Session, *, on_progress: Callable[[str], None] | None = None) -> None:
    """Delete the target's resource group and everything in it; waits until Azure is done."""
    with arm_errors(f"deleting resource group {session.group}"):
        if not session.resources.resource_groups.check_existence(session.group):
            raise NotFoundError(f"resource group {session.group} does not exist", hint="nothing to delete")
        poller = session.resources.resource_groups.begin_delete(session.group)
        while not poller.done():
            if on_progress:
                on_progress(f"deleting {session.group}: {poller.status()}")
            poller.wait(session.target.poll_seconds)
        poller.result()


# ---------------------------------------------------------------- validate and what-if


def _deployment_body(inputs: InfraInputs, *, what_if: bool = False) -> Any:
    """The request body as ARM's JSON (the SDK's models accept a mapping; typed as Any for its overloads)."""
    properties: dict[str, Any] = {
        "mode": "Incremental",
        "template": inputs.template,
        "parameters": inputs.deployment_parameters(),
    }
    if what_if:
        properties["whatIfSettings"] = {"resultFormat": "FullResourcePayloads"}
    return {"properties": properties}


def validate_remote(session: Session, inputs: InfraInputs) -> None:
    """Ask ARM to validate the deployment (template, parameters, SKUs, names); `ArmError` with details."""
    what = f"validating the {inputs.env} deployment in {session.group}"
    with arm_errors(what):
        body = _deployment_body(inputs)
        poller = session.deployments.deployments.begin_validate(session.group, deployment_name(inputs.env), body)
        result = _as_dict(poller.result())
    error = _info(result.get("error"))
    if error:
        details = tuple(str(d) for d in _details(result["error"]))
        raise ArmError(
            f"{what}: {error}", hint=_hint(error.code), code=error.code, target=error.target, details=details
        )


def what_if(session: Session, inputs: InfraInputs) -> WhatIfResult:
    """What deploying `inputs` would create, modify or delete (ARM what-if; nothing changes).

    Without the resource group ARM cannot answer, so every template resource is listed as a create.
    """
    if not group_exists(session):
        return WhatIfResult(session.group, False, tuple(_all_created(inputs)))
    with arm_errors(f"previewing the {inputs.env} deployment in {session.group}"):
        body = _deployment_body(inputs, what_if=True)
        poller = session.deployments.deployments.begin_what_if(session.group, deployment_name(inputs.env), body)
        result = _as_dict(poller.result())
    error = _info(result.get("error"))
    if error:
        raise ArmError(f"what-if of {inputs.env}: {error}", code=error.code, target=error.target)
    changes = (result.get("properties") or {}).get("changes") or []
    return WhatIfResult(session.group, True, tuple(sorted((_change(c) for c in changes), key=_change_order)))


def _all_created(inputs: InfraInputs) -> list[ResourceChange]:
    from services.infra.policy import flatten

    return [
        ResourceChange("create", r.type, r.name, "") for r in flatten(inputs.template.get("resources")) if "/" in r.type
    ]


def _change(raw: Mapping[str, Any]) -> ResourceChange:
    resource_id = str(raw.get("resourceId", ""))
    kind, name = split_resource_id(resource_id)
    paths = tuple(_delta_lines(raw.get("delta") or []))
    word = CHANGE_WORDS.get(str(raw.get("changeType")), str(raw.get("changeType", "")).lower())
    return ResourceChange(word, kind, name, resource_id, paths)


def _delta_lines(delta: list[Mapping[str, Any]], prefix: str = "") -> Iterator[str]:
    marks = {"Create": "+", "Delete": "-", "Modify": "~", "Array": "~"}
    for item in delta:
        path = f"{prefix}{item.get('path', '')}"
        kind = str(item.get("propertyChangeType", ""))
        if kind == "NoEffect":
            continue
        children = item.get("children") or []
        if children and kind != "Array":
            yield from _delta_lines(children, f"{path}.")
        else:
            yield f"{marks.get(kind, '~')} {path}"


def _change_order(change: ResourceChange) -> tuple[int, str, str]:
    order = ["delete", "create", "modify", "deploy", "unsupported", "no change", "ignore"]
    rank = order.index(change.change) if change.change in order else len(order)
    return rank, change.resource_type.lower(), change.name.lower()


def split_resource_id(resource_id: str) -> tuple[str, str]:
    """(type, name) of an ARM resource id: `.../providers/NS/t1/n1/t2/n2` -> (`NS/t1/t2`, `n1/n2`)."""
    _, sep, tail = resource_id.rpartition("/providers/")
    if not sep:
        return "", resource_id
    parts = tail.split("/")
    types, names = [parts[0]], []
    for index in range(1, len(parts) - 1, 2):
        types.append(parts[index])
        names.append(parts[index + 1])
    return "/".join(types), "/".join(names)


# ---------------------------------------------------------------- deploy


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
        poller = session.deployments.deployments.begin_create_or_update(session.group, name, _deployment_body(inputs))
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
        failure = _info((final.get("properties") or {}).get("error")) or ErrorInfo(
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
        return _as_dict(session.deployments.deployments.get(session.group, name))


def _failed(
    name: str, group: str, failure: Exception | ErrorInfo, operations: tuple[Operation, ...]
) -> DeploymentFailedError:
    info = failure if isinstance(failure, ErrorInfo) else error_info(failure)
    info = info or ErrorInfo("DeploymentFailed", "the deployment failed")
    failed = [op for op in operations if op.state == "Failed"]
    lines = tuple(f"{op.label}: {op.error or op.status_code}" for op in failed)
    return DeploymentFailedError(
        f"deployment {name} in {group} failed: {info}" + "".join(f"\n  failed: {line}" for line in lines),
        hint=_hint(failed[0].error.code if failed and failed[0].error else info.code)
        or "fix the failed resources and run `up` again (finished resources are kept)",
        code=info.code,
        target=info.target,
        details=lines,
    )


def operations(session: Session, name: str) -> list[Operation]:
    """The deployment's operations as ARM lists them now (resource, operation, state, error)."""
    with arm_errors(f"listing operations of deployment {name}"):
        raw = [_as_dict(op) for op in session.deployments.deployment_operations.list(session.group, name)]
    return [_operation(op) for op in raw if ((op.get("properties") or {}).get("targetResource"))]


def _operation(raw: Mapping[str, Any]) -> Operation:
    props = raw.get("properties") or {}
    target = props.get("targetResource") or {}
    status = props.get("statusMessage") or {}
    error = status.get("error") if isinstance(status, Mapping) else None
    inner = _details(error) if isinstance(error, Mapping) else []
    info = inner[0] if inner else _info(error)
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


# ---------------------------------------------------------------- outputs


def deployment_outputs(target: AzureTarget, env: str) -> dict[str, Any]:
    """The outputs of the environment's last deployment (values only)."""
    session = connect(target)
    name = deployment_name(env)
    with arm_errors(f"reading deployment {name} in {session.group}"):
        deployment = _as_dict(session.deployments.deployments.get(session.group, name))
    state = (deployment.get("properties") or {}).get("provisioningState")
    if state != "Succeeded":
        raise NotFoundError(
            f"deployment {name} in {session.group} is {state or 'unknown'}, so it has no outputs",
            hint=f"run `workbench infra up --env {env}`",
        )
    return _outputs_of(deployment)


def _outputs_of(deployment: Mapping[str, Any]) -> dict[str, Any]:
    outputs = (deployment.get("properties") or {}).get("outputs") or {}
    return {name: entry.get("value") if isinstance(entry, Mapping) else entry for name, entry in outputs.items()}


def _as_dict(model: Any) -> dict[str, Any]:
    """An SDK model as ARM's JSON (wire names), or a plain dict as it is."""
    if model is None:
        return {}
    if isinstance(model, dict):
        return model
    as_dict = getattr(model, "as_dict", None)
    return dict(as_dict()) if callable(as_dict) else dict(model)
