"""Credentials and the two SDK clients for one target (`Session`); the names and shapes every ARM call shares."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import ConfigError, CredentialsError
from services.infra.arm.errors import LOGIN_HINT

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient


PUBLIC_ENDPOINT = "https://management.azure.com"

ARM_SCOPE = "https://management.azure.com/.default"


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


def deployment_name(env: str) -> str:
    """The deployment's name in the resource group: one per environment, replaced by each `up`."""
    return f"llm-workbench-{env}"


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


def as_dict(model: Any) -> dict[str, Any]:
    """An SDK model as ARM's JSON (wire names), or a plain dict as it is."""
    if model is None:
        return {}
    if isinstance(model, dict):
        return model
    to_dict = getattr(model, "as_dict", None)
    return dict(to_dict()) if callable(to_dict) else dict(model)
