"""ARM's errors as workbench errors: code, message, target and details, never the credential's text."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from services.errors import ArmError, AzureUnavailableError, CredentialsError, NextStep, NotFoundError

LOGIN_HINT = (
    "log in with the Azure CLI (`az login`), run on a VM with a managed identity, or set "
    "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET for a service principal"
)


@dataclass(frozen=True)
class ErrorInfo:
    """ARM's error: code, message and the resource it concerns."""

    code: str
    message: str
    target: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" (target: {self.target})" if self.target else "")


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
        raise NotFoundError(f"{what}: {info}", hint=hint_for(info.code), step=step_for(info.code)) from None
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
    info = info_of(body) or ErrorInfo(str(getattr(exc, "status_code", "error")), str(getattr(exc, "reason", "failed")))
    return failure(what, body, info)


def failure(what: str, body: Mapping[str, Any], info: ErrorInfo) -> ArmError:
    """An `ArmError` for ARM's error `body` (code, target, details flattened), with our hint and next step."""
    return ArmError(
        f"{what}: {info}",
        hint=hint_for(info.code),
        step=step_for(info.code),
        code=info.code,
        target=info.target,
        details=tuple(str(d) for d in details_of(body)),
    )


def error_info(exc: Any) -> ErrorInfo | None:
    """ARM's error code, message and target from an SDK exception, if its response has them."""
    return info_of(_error_body(exc))


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


def info_of(body: Mapping[str, Any] | None) -> ErrorInfo | None:
    """ARM's error code, message and target from an error body; None without a code."""
    if not body or not body.get("code"):
        return None
    return ErrorInfo(str(body["code"]), str(body.get("message", "")).strip(), body.get("target") or None)


def details_of(body: Mapping[str, Any]) -> list[ErrorInfo]:
    """The innermost errors of a body's `details`, flattened."""
    found = []
    for detail in body.get("details") or []:
        info = info_of(detail) if isinstance(detail, Mapping) else None
        nested = details_of(detail) if isinstance(detail, Mapping) else []
        found += nested or ([info] if info else [])
    return found


HINTS = {
    "AuthorizationFailed": "the identity needs Contributor and User Access Administrator (for role assignments)",
    "InvalidTemplate": "validate the environment and fix the template",
    "InvalidTemplateDeployment": "the details say which resource and setting Azure refused",
    "QuotaExceeded": "request a quota increase in the Azure portal (Quotas), or pick a smaller VM size",
    "SkuNotAvailable": "pick another VM size or region (devVmSize / deployVmSize, azure.location)",
}


def hint_for(code: str | None) -> str | None:
    """What to do next about an ARM error code, when we know."""
    return HINTS.get(code or "")


STEPS = {
    "InvalidTemplate": NextStep("infra.validate"),
    "ResourceGroupNotFound": NextStep("infra.up"),
    "DeploymentNotFound": NextStep("infra.up"),
}


def step_for(code: str | None) -> NextStep | None:
    """The next step about an ARM error code, as a fact, when we know one (the front-ends phrase it)."""
    return STEPS.get(code or "")
