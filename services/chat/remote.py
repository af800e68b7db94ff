"""OpenAI-compatible backend (vLLM, TGI, Ollama, our deployed chatbot): streaming chat completions.

The API key comes from the environment variable the variant names, never from the variant itself;
it is redacted from every error message, because a server may echo request headers back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from contextlib import closing
from typing import Any

from services.chat.local import Generated, Messages
from services.chat.variant import Variant
from services.errors import ChatBackendError
from services.progress import CancelToken

NO_KEY = "not-needed"  # the client insists on some key; servers without auth ignore it


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
