"""OpenAI-compatible backend (vLLM, TGI, Ollama, our deployed chatbot): streaming chat completions.

The API key comes from the environment variable the variant names, never from the variant itself;
it is redacted from every error message, because a server may echo request headers back.

A suite is a file anyone can hand you, so it does not decide where a key goes: `EndpointPolicy`
holds the endpoints the user trusted in their own settings (a name, a URL and the one variable whose
key that URL may receive). A variant names one of them, or gives a URL with no key at all; a URL
with a key that is not that exact trusted pair is refused before any request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from services.chat.local import Generated, Messages
from services.chat.variant import Variant
from services.errors import ChatBackendError, UntrustedEndpointError
from services.progress import CancelToken

NO_KEY = "not-needed"  # the client insists on some key; servers without auth ignore it


@dataclass(frozen=True)
class Endpoint:
    """An endpoint the user trusts with the key in `api_key_env` (None: with no key)."""

    name: str
    url: str
    api_key_env: str | None = None


@dataclass(frozen=True)
class EndpointPolicy:
    """Where a variant's key may go: only to an endpoint of the user's own settings."""

    endpoints: tuple[Endpoint, ...] = ()
    allow_hint: str = "add it to [chat.endpoints] in your user settings"
    """How to allow a refused endpoint, ending the refusal's one line."""

    def named(self, name: str | None) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)

    def allowing(self, url: str | None, api_key_env: str | None) -> EndpointPolicy:
        """This policy plus one pair the user gave themselves (e.g. on the command line)."""
        if not url or not api_key_env or self.named(url) is not None:
            return self
        return replace(self, endpoints=(*self.endpoints, Endpoint(url, url, api_key_env)))

    def resolve(self, variant: Variant, *, label: str | None = None) -> Variant:
        """The variant with a named endpoint's URL and key variable; `UntrustedEndpointError` when
        it would send a key anywhere the user did not trust."""
        if variant.backend != "openai":
            return variant
        label = label or f"variant {variant.name!r}"
        named = self.named(variant.endpoint)
        if named is not None:
            return _use(named, variant, label)
        if not _is_url(variant.endpoint):
            names = ", ".join(e.name for e in self.endpoints) or "none yet"
            raise UntrustedEndpointError(
                f"{label} names endpoint {variant.endpoint!r}, which is not in [chat.endpoints] "
                f"(known: {names}); {self.allow_hint}"
            )
        if variant.api_key_env and not self._trusts(variant.endpoint or "", variant.api_key_env):
            raise UntrustedEndpointError(
                f"{label} asks to send ${variant.api_key_env} to {variant.endpoint}; {self.allow_hint} to allow it"
            )
        return variant

    def _trusts(self, url: str, api_key_env: str) -> bool:
        return any(same_url(e.url, url) and e.api_key_env == api_key_env for e in self.endpoints)


def _use(endpoint: Endpoint, variant: Variant, label: str) -> Variant:
    if variant.api_key_env and variant.api_key_env != endpoint.api_key_env:
        trusted = f"${endpoint.api_key_env}" if endpoint.api_key_env else "no key"
        raise UntrustedEndpointError(
            f"{label} asks to send ${variant.api_key_env} to endpoint {endpoint.name!r} ({endpoint.url}), "
            f"which is trusted with {trusted} only; name the endpoint without api_key_env"
        )
    return variant.model_copy(update={"endpoint": endpoint.url, "api_key_env": endpoint.api_key_env})


def _is_url(text: str | None) -> bool:
    parts = urlsplit(text or "")
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def same_url(a: str, b: str) -> bool:
    """Equal base URLs: scheme and host case-insensitive, default ports and a trailing slash ignored."""
    return _canonical(a) == _canonical(b)


def _canonical(url: str) -> tuple[Any, ...]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        port = -1
    host = (parts.hostname or "").lower()
    return parts.scheme.lower(), host, port, parts.path.rstrip("/"), parts.query, parts.username, parts.password


def api_key(variant: Variant) -> str:
    """The key from `api_key_env` (NO_KEY when the variant names none)."""
    if not variant.api_key_env:
        return NO_KEY
    key = os.environ.get(variant.api_key_env)
    if not key:
        raise ChatBackendError(
            f"variant {variant.name}: environment variable {variant.api_key_env} is not set",
            hint=f"export {variant.api_key_env}=... with the endpoint's API key",
        )
    return key


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret and secret != NO_KEY else text


def stream_chat(variant: Variant, messages: Messages, cancel: CancelToken) -> Iterator[str | Generated]:
    """Text pieces from a streaming chat completion, then one `Generated` (error set on failure)."""
    prompt = json.dumps(messages, indent=2, ensure_ascii=False)
    key = api_key(variant)
    tokens, error = 0, None
    try:
        with closing(_chunks(variant, messages, key)) as chunks:  # closing ends the HTTP stream on cancel
            for piece, usage in chunks:
                if cancel.cancelled:
                    break
                tokens = usage if usage is not None else tokens + (1 if piece else 0)
                if piece:
                    yield piece
    except Exception as exc:  # endpoint down, timeout, HTTP error: the answer says which
        error = redact(describe_error(variant, exc), key)
    yield Generated(prompt, tokens, error)


def _chunks(variant: Variant, messages: Messages, key: str) -> Generator[tuple[str, int | None]]:
    from openai import OpenAI

    client = OpenAI(base_url=variant.endpoint, api_key=key, timeout=variant.timeout_s, max_retries=0)
    params = variant.params
    stream: Any = client.chat.completions.create(  # type: ignore[call-overload]
        model=variant.model or "default",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=params.max_new_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        seed=params.seed,
    )
    with stream:
        for chunk in stream:
            usage = chunk.usage.completion_tokens if getattr(chunk, "usage", None) else None
            text = chunk.choices[0].delta.content if chunk.choices else None
            yield text or "", usage


def describe_error(variant: Variant, exc: Exception) -> str:
    """One line saying what failed against which endpoint."""
    import openai

    where = f"endpoint {variant.endpoint}"
    if isinstance(exc, openai.APITimeoutError):
        return f"{where}: timed out after {variant.timeout_s:g} s"
    if isinstance(exc, openai.APIConnectionError):
        return f"{where}: cannot connect ({exc.__cause__ or exc})"
    if isinstance(exc, openai.APIStatusError):
        return f"{where}: HTTP {exc.status_code}: {_status_detail(exc)}"
    return f"{where}: {type(exc).__name__}: {exc}"


def _status_detail(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(exc.message)[:300]
