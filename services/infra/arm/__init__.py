"""Azure Resource Manager through the real SDK clients: credentials, GPU quota, what-if, deploy, outputs, delete.

Clients: `azure-mgmt-resource`'s `ResourceManagementClient` for resource groups,
`azure-mgmt-resource-deployments`' `DeploymentsMgmtClient` for validate, what-if, create (long-running,
polled) and deployment operations.

Credentials come from `DefaultAzureCredential` (Azure CLI login, managed identity, or a service
principal in AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET) and never from settings.
Errors from the SDK are translated into `services.errors` without the credential's own text, so a
secret can never reach a message.

The modules: `session` (target, credential, clients), `errors`, `groups` (the resource group),
`quota`, `whatif` (validation and preview) and `deployment` (`up` and its outputs). This package
is their public face for the front-ends: `from services.infra import arm`, then `arm.connect(...)`,
`arm.what_if(...)`, `arm.provision(...)`; the names below are that whole surface.
"""

from services.infra.arm.deployment import (
    DeployProgress,
    DeployResult,
    OnProgress,
    Operation,
    deployment_outputs,
    operations,
    provision,
)
from services.infra.arm.errors import LOGIN_HINT, ErrorInfo, arm_error, arm_errors, error_info
from services.infra.arm.groups import delete_group, ensure_group, group_exists
from services.infra.arm.quota import QuotaReport, QuotaRow, check_quota
from services.infra.arm.session import (
    AzureTarget,
    Session,
    connect,
    credential_for,
    default_credential,
    deployment_name,
    subscription_of,
)
from services.infra.arm.whatif import ResourceChange, WhatIfResult, split_resource_id, validate_remote, what_if

__all__ = [
    "LOGIN_HINT",
    "AzureTarget",
    "DeployProgress",
    "DeployResult",
    "ErrorInfo",
    "OnProgress",
    "Operation",
    "QuotaReport",
    "QuotaRow",
    "ResourceChange",
    "Session",
    "WhatIfResult",
    "arm_error",
    "arm_errors",
    "check_quota",
    "connect",
    "credential_for",
    "default_credential",
    "delete_group",
    "deployment_name",
    "deployment_outputs",
    "ensure_group",
    "error_info",
    "group_exists",
    "operations",
    "provision",
    "split_resource_id",
    "subscription_of",
    "validate_remote",
    "what_if",
]
