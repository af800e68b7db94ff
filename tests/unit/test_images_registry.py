"""Registry logins (password, Docker config, ACR through Azure identity) and the HTTP API v2 client,
against a local fake registry (`tests.fakeregistry`). A canary password must never leak."""

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from services.errors import ConfigError, CredentialsError, RegistryAuthError, RegistryError
from services.images.acr import ACR_USERNAME, acr_credentials, acr_token_scope, exchange_token, token_expiry
from services.images.credentials import RegistryAccess
from services.images.registry import (
    RegistryClient,
    RegistryLogin,
    docker_config_credentials,
    resolve_credentials,
)
from tests.fakeregistry import AAD_TOKEN, FakeRegistry, RouteTransport, fake_jwt

CANARY = "canary-Registry-Pw-4b7d"


class AadCredential:
    def __init__(self, token: str = AAD_TOKEN) -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes += scopes
        return AccessToken(self.token, int(time.time()) + 3600)


class BrokenCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise RuntimeError(f"no login for {CANARY}")


@pytest.fixture
def basic() -> Iterator[FakeRegistry]:
    with FakeRegistry(auth="basic", password=CANARY) as registry:
        yield registry


def password_access(registry: FakeRegistry, password: str = CANARY, **changes: Any) -> RegistryAccess:
    values: dict[str, Any] = {
        "server": registry.server,
        "auth": "password",
        "username": "workbench",
        "password_env": "TEST_REGISTRY_PW",
        "plain_http": True,
        "environ": {"TEST_REGISTRY_PW": password},
    }
    return RegistryAccess(**{**values, **changes})


def leaked(registry: FakeRegistry) -> list[str]:
    """Requests that carried the canary anywhere but an Authorization header."""
    return [f"{s.method} {s.path}" for s in registry.seen if CANARY in s.path or CANARY in s.body]


# ---------------------------------------------------------------- credentials


def test_password_from_the_named_environment_variable(basic: FakeRegistry) -> None:
    creds = resolve_credentials(password_access(basic))
    assert creds is not None and creds.username == "workbench"
    assert creds.secret.get_secret_value() == CANARY
    assert creds.source == "environment TEST_REGISTRY_PW"
    assert CANARY not in repr(creds)


def test_password_auth_without_the_variable_or_user_is_a_config_error(basic: FakeRegistry) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_credentials(password_access(basic, environ={}))
    assert "TEST_REGISTRY_PW is not set" in err.value.message and "never put the password" in (err.value.hint or "")
    with pytest.raises(ConfigError):
        resolve_credentials(password_access(basic, username=None))
    with pytest.raises(ConfigError, match="no registry configured"):
        resolve_credentials(RegistryAccess(None))


def test_docker_config_credentials(tmp_path: Path) -> None:
    auth = base64.b64encode(f"ci-user:{CANARY}".encode()).decode()
    config = {
        "auths": {
            "reg.example:5000": {"auth": auth},
            "myacr.azurecr.io": {"identitytoken": "refresh-xyz"},
        }
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    creds = docker_config_credentials("reg.example:5000", tmp_path)
    assert creds is not None and (creds.username, creds.secret.get_secret_value()) == ("ci-user", CANARY)
    token = docker_config_credentials("myacr.azurecr.io", tmp_path)
    assert token is not None and token.identity_token
    assert token.auth_config() == {"identitytoken": "refresh-xyz", "serveraddress": "myacr.azurecr.io"}
    assert docker_config_credentials("other.example", tmp_path) is None


# ---------------------------------------------------------------- HTTP API v2


def test_tags_digests_and_sizes_with_basic_auth(basic: FakeRegistry, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):  # whatever an app set up earlier in this process
        caplog.set_level(logging.DEBUG, logger=name)
    digests = {tag: basic.add_image("hello", tag, layers=(1000, 2000)) for tag in ("a1", "b2", "c3")}
    with RegistryClient(password_access(basic)) as client:
        assert client.tags("hello") == ["a1", "b2", "c3"]  # two pages (Link: rel="next")
        assert client.manifest_digest("hello", "b2") == digests["b2"]
        manifest = client.manifest("hello", "c3")
        assert manifest is not None and manifest.size_bytes == 3500
        assert client.tags("nobody") == [] and client.manifest_digest("hello", "zz") is None
    heads = [s for s in basic.seen if s.method == "HEAD"]
    assert "application/vnd.oci.image.manifest.v1+json" in heads[0].headers["Accept"]
    assert leaked(basic) == []
    assert caplog.records and CANARY not in caplog.text


def test_no_credentials_or_wrong_ones_are_refused_clearly(basic: FakeRegistry, tmp_path: Path) -> None:
    anonymous = RegistryAccess(basic.server, plain_http=True, docker_config=tmp_path)
    with RegistryClient(anonymous) as client, pytest.raises(RegistryAuthError) as err:
        client.tags("hello")
    assert err.value.message == f"registry {basic.server} needs a login and none was found"
    assert f"docker login {basic.server}" in (err.value.hint or "")
    with RegistryClient(password_access(basic, "wrong-password")) as client, pytest.raises(RegistryAuthError) as err:
        client.check()
    assert "refused the credentials from environment TEST_REGISTRY_PW" in err.value.message
    assert "wrong-password" not in str(err.value)


def test_unreachable_registry(tmp_path: Path) -> None:
    access = RegistryAccess("127.0.0.1:9", plain_http=True, docker_config=tmp_path)
    with RegistryClient(access, timeout=2) as client, pytest.raises(RegistryError) as err:
        client.tags("hello")
    assert "cannot be reached" in err.value.message and "plain_http" in (err.value.hint or "")


def test_bearer_token_realm_with_basic_credentials() -> None:
    with FakeRegistry(auth="bearer", password=CANARY) as registry:
        registry.add_image("team/hello", "v1")
        with RegistryClient(password_access(registry)) as client:
            assert client.tags("team/hello") == ["v1"]
            assert client.manifest_digest("team/hello", "v1")
        token_requests = [s for s in registry.seen if s.path.startswith("/token")]
        assert len(token_requests) == 1  # one token per scope, reused
        assert "scope=repository%3Ateam%2Fhello%3Apull" in token_requests[0].path
        assert leaked(registry) == []


# ---------------------------------------------------------------- ACR

ACR_HOST = "wbtest.azurecr.io"


@pytest.fixture
def acr() -> Iterator[FakeRegistry]:
    with FakeRegistry(auth="acr", login_server=ACR_HOST) as registry:
        yield registry


def route(registry: FakeRegistry, host: str = ACR_HOST) -> RouteTransport:
    return RouteTransport({host: registry.server})


def acr_access(registry: FakeRegistry, credential: Any = None) -> RegistryAccess:
    credential = credential or AadCredential()
    return RegistryAccess(ACR_HOST, auth="acr", credential=credential, transport=route(registry))


def test_exchange_of_the_aad_token_for_a_refresh_token(acr: FakeRegistry) -> None:
    refresh = exchange_token(ACR_HOST, AAD_TOKEN, tenant="tenant-1", transport=route(acr))
    assert refresh == acr.refresh_tokens[0]
    post = next(s for s in acr.seen if s.path == "/oauth2/exchange")
    form = dict(pair.split("=", 1) for pair in post.body.split("&"))
    assert form == {"grant_type": "access_token", "service": ACR_HOST, "access_token": AAD_TOKEN, "tenant": "tenant-1"}
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert post.headers["Host"] == ACR_HOST
    with pytest.raises(RegistryAuthError) as err:
        exchange_token(ACR_HOST, "not-the-aad-token", transport=route(acr))
    assert "refused the Azure AD token" in err.value.message and "AcrPush" in (err.value.hint or "")


def test_acr_login_lists_tags_with_the_refresh_token(acr: FakeRegistry) -> None:
    acr.add_image("chatbot", "v1")
    credential = AadCredential()
    creds = acr_credentials(acr_access(acr, credential))
    assert creds.username == ACR_USERNAME and creds.source == "Azure identity"
    assert creds.expires_at == pytest.approx(time.time() + acr.refresh_lifetime_s, abs=5)
    assert credential.scopes == ["https://containerregistry.azure.net/.default"]  # ACR's audience, not ARM's
    with RegistryClient(acr_access(acr), transport=route(acr)) as client:
        assert client.tags("chatbot") == ["v1"]
    assert acr.access_tokens  # the token service handed out an access token for the tags call


def test_acr_refresh_token_is_renewed_before_it_runs_out(acr: FakeRegistry) -> None:
    acr.refresh_lifetime_s = 120
    login = RegistryLogin(acr_access(acr))
    first = login.credentials(valid_for_s=60)
    assert login.credentials(valid_for_s=60) is first  # still good for the next minute
    renewed = login.credentials(valid_for_s=45 * 60)  # a long push: renewed first
    assert renewed is not first and len(acr.refresh_tokens) == 2


def test_acr_without_azure_credentials(acr: FakeRegistry) -> None:
    with pytest.raises(CredentialsError) as err:
        acr_credentials(acr_access(acr, BrokenCredential()))
    assert CANARY not in str(err.value) and "az login" in (err.value.hint or "")


def test_acr_token_never_goes_over_plain_http() -> None:
    credential = AadCredential(CANARY)
    with FakeRegistry(auth="acr") as posing:
        access = RegistryAccess(posing.server, auth="acr", plain_http=True, credential=credential)
        with pytest.raises(ConfigError) as err:
            acr_credentials(access)
        with pytest.raises(ConfigError):
            RegistryLogin(access).credentials()
    assert posing.seen == [] and credential.scopes == []  # no request, and no Azure token was even asked for
    assert "HTTPS" in err.value.message and "plain_http" in err.value.message


@pytest.mark.parametrize(
    "host", ["registry.example.com", "wbtest.azurecr.io.example.com", "wbtestazurecr.io", "wbtest.azurecr.io:8443"]
)
def test_acr_token_goes_only_to_azure_container_registry_hosts(host: str) -> None:
    credential, name = AadCredential(CANARY), host.partition(":")[0]
    with FakeRegistry(auth="acr", login_server=host) as posing:
        access = RegistryAccess(host, auth="acr", credential=credential, transport=route(posing, name))
        with pytest.raises(ConfigError) as err:
            acr_credentials(access)
        with pytest.raises(ConfigError):
            exchange_token(host, CANARY, transport=route(posing, name))
    assert posing.seen == [] and credential.scopes == []
    assert host in err.value.message and "azurecr.io" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("server", "scope"),
    [
        ("myacr.azurecr.io", "https://containerregistry.azure.net/.default"),
        ("MyAcr.AzureCR.io:443", "https://containerregistry.azure.net/.default"),
        ("myacr-abc123.azurecr.io", "https://containerregistry.azure.net/.default"),
        ("myacr.azurecr.cn", "https://management.chinacloudapi.cn/.default"),
        ("myacr.azurecr.us", "https://management.usgovcloudapi.net/.default"),
    ],
)
def test_azure_container_registry_hosts_and_their_token_scope(server: str, scope: str) -> None:
    assert acr_token_scope(server) == scope


@pytest.mark.parametrize(
    "server",
    [
        "azurecr.io",
        ".azurecr.io",
        "myacr.azurecr.io.",
        "myacr.azurecr.io@evil.example",
        "evil.example/myacr.azurecr.io",
        "myacr.azurecr.io:5000",
        "127.0.0.1:5000",
        "myacr.azurecr.de",
    ],
)
def test_other_hosts_are_not_azure_container_registries(server: str) -> None:
    with pytest.raises(ConfigError):
        acr_token_scope(server)


def test_token_expiry_reads_exp_only() -> None:
    assert token_expiry(fake_jwt(1_700_000_000)) == 1_700_000_000
    assert token_expiry("not-a-jwt") is None
