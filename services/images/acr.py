"""Azure Container Registry login through Azure identity, as `az acr login` does it.

An Azure AD access token (Azure CLI login, managed identity or a service principal, through
`DefaultAzureCredential`) is exchanged at `POST https://<registry>/oauth2/exchange`
(`grant_type=access_token`) for an ACR refresh token. Docker and the registry's token service
then take that refresh token as the password of the fixed user `00000000-0000-0000-0000-000000000000`.
Refresh tokens expire (about three hours); `RegistryLogin` asks for a new one before a long push.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from services.errors import CredentialsError, RegistryAuthError, RegistryError
from services.images.registry import RegistryAccess, RegistryCredentials

if TYPE_CHECKING:
    import httpx

ACR_USERNAME = "00000000-0000-0000-0000-000000000000"
AAD_SCOPE = "https://management.azure.com/.default"
"""The audience `az acr login` asks Azure AD for; ACR accepts it for the exchange."""
DEFAULT_LIFETIME_S = 3 * 3600


def acr_credentials(access: RegistryAccess, *, transport: httpx.BaseTransport | None = None) -> RegistryCredentials:
    """An ACR refresh token for `access.server` from the Azure identity, as registry credentials."""
    server = access.require_server()
    token = _aad_token(access)
    refresh = exchange_token(server, token, scheme=access.scheme, transport=transport)
    expires_at = token_expiry(refresh) or time.time() + DEFAULT_LIFETIME_S
    return RegistryCredentials(server, ACR_USERNAME, SecretStr(refresh), source="Azure identity", expires_at=expires_at)


def _aad_token(access: RegistryAccess) -> str:
    from services.infra.arm import LOGIN_HINT, default_credential

    credential = access.credential if access.credential is not None else default_credential()
    try:
        return str(credential.get_token(AAD_SCOPE).token)
    except Exception:  # the credential's own text may describe it, so it is dropped
        raise CredentialsError("no usable Azure credentials found for the registry", hint=LOGIN_HINT) from None


def exchange_token(
    server: str,
    aad_token: str,
    *,
    scheme: str = "https",
    tenant: str | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> str:
    """ACR's refresh token for an Azure AD access token (`POST /oauth2/exchange`)."""
    import httpx

    form = {"grant_type": "access_token", "service": server, "access_token": aad_token}
    if tenant:
        form["tenant"] = tenant
    url = f"{scheme}://{server}/oauth2/exchange"
    try:
        with httpx.Client(
            timeout=timeout, transport=transport, trust_env=scheme == "https", verify=ssl.create_default_context()
        ) as client:
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
