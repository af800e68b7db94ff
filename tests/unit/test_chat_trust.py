"""Where a chat variant's API key may go: only to an endpoint of the user's own settings."""

import pytest

from services.chat.remote import Endpoint, EndpointPolicy, same_url
from services.chat.variant import Variant
from services.errors import UntrustedEndpointError

POLICY = EndpointPolicy(
    (Endpoint("team", "https://chat.internal/v1", "TEAM_KEY"), Endpoint("open", "http://open.internal/v1")),
    allow_hint="add it to [chat.endpoints] in your user settings (~/.config/llm-workbench/workbench.toml)",
)


def remote(endpoint: str, api_key_env: str | None = None) -> Variant:
    return Variant(name="x", backend="openai", endpoint=endpoint, api_key_env=api_key_env)


def test_a_named_endpoint_brings_its_url_and_key_variable() -> None:
    resolved = POLICY.resolve(remote("team"))
    assert (resolved.endpoint, resolved.api_key_env) == ("https://chat.internal/v1", "TEAM_KEY")
    assert POLICY.resolve(remote("team", "TEAM_KEY")).endpoint == "https://chat.internal/v1"
    assert POLICY.resolve(remote("open")).api_key_env is None


@pytest.mark.parametrize(
    "url",
    [
        "https://chat.internal/v1",
        "https://CHAT.internal/v1/",
        "https://chat.internal:443/v1",
        "HTTPS://chat.internal/v1",
    ],
)
def test_the_trusted_pair_by_url_is_allowed(url: str) -> None:
    assert POLICY.resolve(remote(url, "TEAM_KEY")).endpoint == url


def test_a_url_without_a_key_is_allowed() -> None:
    assert POLICY.resolve(remote("http://anywhere:1234/v1")).endpoint == "http://anywhere:1234/v1"


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (
            remote("https://evil:1234", "AZURE_CLIENT_SECRET"),
            "variant 'x' asks to send $AZURE_CLIENT_SECRET to https://evil:1234; add it to [chat.endpoints] in "
            "your user settings (~/.config/llm-workbench/workbench.toml) to allow it",
        ),
        (remote("https://chat.internal/v1", "AZURE_CLIENT_SECRET"), "asks to send $AZURE_CLIENT_SECRET"),
        (remote("https://chat.internal:8443/v1", "TEAM_KEY"), "asks to send $TEAM_KEY"),
        (remote("http://chat.internal/v1", "TEAM_KEY"), "asks to send $TEAM_KEY"),
        (remote("https://user@chat.internal/v1", "TEAM_KEY"), "asks to send $TEAM_KEY"),
        (remote("team", "AZURE_CLIENT_SECRET"), "which is trusted with $TEAM_KEY only"),
        (remote("open", "TEAM_KEY"), "which is trusted with no key only"),
        (remote("nobody"), "names endpoint 'nobody', which is not in [chat.endpoints] (known: team, open)"),
    ],
)
def test_anything_else_is_refused_in_one_line(variant: Variant, expected: str) -> None:
    with pytest.raises(UntrustedEndpointError) as err:
        POLICY.resolve(variant)
    assert expected in err.value.message and "\n" not in err.value.message and err.value.exit_code == 2


def test_the_default_policy_trusts_no_key_and_local_variants_pass() -> None:
    with pytest.raises(UntrustedEndpointError):
        EndpointPolicy().resolve(remote("http://127.0.0.1:8000/v1", "OPENAI_API_KEY"))
    local = Variant(name="l", model="m")
    assert EndpointPolicy().resolve(local) is local


def test_a_pair_given_on_the_command_line_is_the_users_own() -> None:
    allowed = EndpointPolicy().allowing("http://127.0.0.1:8000/v1", "MY_KEY")
    assert allowed.resolve(remote("http://127.0.0.1:8000/v1", "MY_KEY")).api_key_env == "MY_KEY"
    assert not same_url("http://a/v1", "http://b/v1")
