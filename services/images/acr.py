"""Azure Container Registry login through Azure identity, as `az acr login` does it.

An Azure AD access token (Azure CLI login, managed identity or a service principal, through
`DefaultAzureCredential`) is exchanged at `POST https://<registry>/oauth2/exchange`
(`grant_type=access_token`) for an ACR refresh token. Docker and the registry's token service
then take that refresh token as the password of the fixed user `00000000-0000-0000-0000-000000000000`.
Refresh tokens expire (about three hours); `RegistryLogin` asks for a new one before a long push.

The Azure AD token is a credential for the user's Azure identity, so it goes only over HTTPS and
only to an Azure container registry host (`*.azurecr.io` and the sovereign clouds' suffixes), and
it is asked for with the narrowest audience the registry accepts: ACR's own
(`containerregistry.azure.net`) in the public cloud, which every registry accepts whatever its
authentication-as-ARM policy; the cloud's ARM audience in the sovereign clouds, as `az acr login` does there.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import time
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from services.errors import ConfigError, CredentialsError, RegistryAuthError, RegistryError
from services.images.credentials import RegistryAccess, RegistryCredentials

if TYPE_CHECKING:
    import httpx

ACR_USERNAME = "00000000-0000-0000-0000-000000000000"
ACR_SCOPES = {
    "azurecr.io": "https://containerregistry.azure.net/.default",
    "azurecr.cn": "https://management.chinacloudapi.cn/.default",
    "azurecr.us": "https://management.usgovcloudapi.net/.default",
}
"""Login-server suffix of each Azure cloud -> the Azure AD scope of the token exchanged there."""
DEFAULT_LIFETIME_S = 3 * 3600
_ACR_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<suffix>" + "|".join(map(re.escape, ACR_SCOPES)) + r")(?::443)?"
)
ACR_HINT = (
    "registry.auth acr works with Azure container registries only ("
    + ", ".join(f"NAME.{suffix}" for suffix in ACR_SCOPES)
    + "); for another registry use auth password or docker-config"
)


def acr_credentials(access: RegistryAccess, *, transport: httpx.BaseTransport | None = None) -> RegistryCredentials:
    """An ACR refresh token for `access.server` from the Azure identity, as registry credentials."""
    server = access.require_server()
    if access.plain_http:
        raise ConfigError(
            f"registry {server}: the Azure AD token exchange runs over HTTPS only, and registry.plain_http is set",
            hint="unset registry.plain_http (an Azure container registry speaks HTTPS)",
        )
    token = _aad_token(access, acr_token_scope(server))
    refresh = exchange_token(server, token, transport=transport if transport is not None else access.transport)
    expires_at = token_expiry(refresh) or time.time() + DEFAULT_LIFETIME_S
    return RegistryCredentials(server, ACR_USERNAME, SecretStr(refresh), source="Azure identity", expires_at=expires_at)


def acr_token_scope(server: str) -> str:
    """The Azure AD scope to ask for before the exchange with `server`; `ConfigError` unless `server`
    is an Azure container registry's login server (`NAME.azurecr.io`, optionally `:443`)."""
    found = _ACR_HOST.fullmatch(server.lower())
    if found is None:
        raise ConfigError(
            f"registry {server} is not an Azure container registry: no Azure token is sent to it", hint=ACR_HINT
        )
    return ACR_SCOPES[found.group("suffix")]


def _aad_token(access: RegistryAccess, scope: str) -> str:
    from services.infra.arm.errors import LOGIN_HINT
    from services.infra.arm.session import default_credential

    credential = access.credential if access.credential is not None else default_credential()
    try:
        return str(credential.get_token(scope).token)
    except Exception:  # the credential's own text may describe it, so it is dropped
        raise CredentialsError("no usable Azure credentials found for the registry", hint=LOGIN_HINT) from None


def exchange_token(
    server: str,
    aad_token: str,
    *,
    tenant: str | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> str:
    """ACR's refresh token for an Azure AD access token (`POST https://<server>/oauth2/exchange`);
    `ConfigError`, before any request, unless `server` is an Azure container registry."""
    import httpx

    acr_token_scope(server)
    form = {"grant_type": "access_token", "service": server, "access_token": aad_token}
    if tenant:
        form["tenant"] = tenant
    url = f"https://{server}/oauth2/exchange"
    try:
        with httpx.Client(timeout=timeout, transport=transport, verify=ssl.create_default_context()) as client:
            response = client.post(url, data=form)
    except httpx.HTTPError as exc:
        raise RegistryError(
            f"registry {server} cannot be reached for the Azure AD token exchange: {type(exc).__name__}",
            hint="check registry.login_server and the network",
        ) from None
    return _refresh_token_of(server, response)


def _refresh_token_of(server: str, response: httpx.Response) -> str:
    if response.status_code in (400, 401, 403):
        raise RegistryAuthError(
            f"registry {server} refused the Azure AD token ({response.status_code})",
            hint="check that your identity may use the registry: AcrPush to push, AcrPull to pull",
        )
    if response.status_code >= 400:
        raise RegistryError(f"registry {server} token exchange answered {response.status_code}")
    try:
        token = response.json().get("refresh_token")
    except ValueError:
        token = None
    if not token:
        raise RegistryError(f"registry {server} token exchange sent no refresh token")
    return str(token)


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (read, not verified: only to renew in time); None when absent."""
    try:
        payload = token.split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
