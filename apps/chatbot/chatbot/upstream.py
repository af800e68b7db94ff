"""The `openai` engine: generation by any OpenAI-compatible server (`POST <url>/chat/completions`,
always `stream: true`), its text passed on to the API's sink as it arrives.

The upstream's answer is treated as hostile: the stream is read raw (no content encoding), in
lines of at most `MAX_LINE_BYTES` and `max_bytes` in all, and every event is checked for shape and
types; anything else ends the generation with an `upstream_*` error the API answers as a 502 (504
for a timeout). The API key is sent in a header only: never logged, never in an error or outcome.
Cancelling (the client left, a stop sequence, the deadline) cancels the request's task, which
closes its connection, so the upstream sees its client leave and stops generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, get_args

import httpx
from appkit.budget import Counter, tokenizer_counter
from pydantic import SecretStr

from chatbot.batching import Ticket
from chatbot.engine import GenerationParams, Outcome, Prompt, Sink, render_chat
from chatbot.padded import FinishReason

log = logging.getLogger("chatbot.upstream")

MAX_LINE_BYTES = 1_048_576
"""Longest line of the event stream read from the upstream."""
ERROR_BODY_BYTES = 65_536
"""How much of an upstream error answer is read (and dropped) before the connection is closed."""
FINISH_REASONS: frozenset[str] = frozenset(get_args(FinishReason))

UPSTREAM_ERRORS = {
    "upstream_unreachable": "the upstream model server could not be reached",
    "upstream_refused": "the upstream model server refused the request",
    "upstream_malformed": "the upstream model server sent a malformed answer",
    "upstream_too_large": "the upstream model server sent an answer too large",
    "upstream_disconnected": "the upstream model server ended its answer early",
    "upstream_error": "the upstream model server reported an error",
}
"""What the API says (502) for each upstream error code an `Outcome` may carry in `error`."""


class UpstreamError(Exception):
    """The upstream's answer is not what was asked for; `code` is a key of `UPSTREAM_ERRORS`."""

    def __init__(self, code: str, status: int | None = None) -> None:
        super().__init__(code)
        self.code, self.status = code, status


def upstream_message(error: str | None) -> str | None:
    """The message for an upstream error code (with the HTTP status when there is one), else None."""
    if error is None:
        return None
    code, _, status = error.partition(":")
    message = UPSTREAM_ERRORS.get(code)
    if message is None:
        return None
    return f"{message} (HTTP {status})" if status.isdigit() else message


@dataclass(frozen=True)
class UpstreamConfig:
    """Where and how to ask: the API's base URL, the model to name, the key (never logged)."""

    url: str
    model: str
    api_key: SecretStr | None = None
    connect_timeout_s: float = 5.0
    max_bytes: int = 8_388_608
    use_proxy: bool = False

    def __repr__(self) -> str:
        return f"UpstreamConfig(url={self.url!r}, model={self.model!r})"


class UpstreamEngine:
    """The engine protocol (`engines.Engine`) over an OpenAI-compatible server; token counting (for
    the context budget) only when a local tokenizer of the upstream model was given."""

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        tokenizer: Any = None,
        context_length: int | None = None,
        adapter: str | None = None,
    ) -> None:
        self.config, self.tokenizer, self.adapter = config, tokenizer, adapter
        self.max_positions = context_length if tokenizer is not None else None
        self._ssl = ssl.create_default_context()  # made once: a client per request is then cheap

    def __repr__(self) -> str:
        return f"UpstreamEngine({self.config!r})"

    def counter(self) -> Counter | None:
        if self.tokenizer is None:
            return None
        return tokenizer_counter(self.tokenizer, self.render)

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt as the upstream model reads it when a tokenizer is at hand, else a transcript (for logs)."""
        if self.tokenizer is not None:
            return render_chat(self.tokenizer, messages)
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)

    def prompt(self, messages: list[dict[str, str]]) -> Prompt:
        text = self.render(messages)
        count = self.counter()
        return Prompt(messages, text, count(messages) if count is not None else None)

    def coming(self) -> Ticket:
        """Nothing to announce: each request goes upstream at once (the upstream batches)."""
        return Ticket()

    def generate(
        self, prompt: Prompt, params: GenerationParams, *, deadline: float, sink: Sink, ticket: Ticket | None = None
    ) -> UpstreamRequest:
        """Start the request on the running event loop; events go to `sink`."""
        if ticket is not None:
            ticket.release()
        request = UpstreamRequest(prompt.tokens or 0, sink)
        request.task = asyncio.get_running_loop().create_task(self._run(request, prompt, params, deadline))
        return request

    def body(self, prompt: Prompt, params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": prompt.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.ignore_eos:  # vLLM's and this chatbot's extension: sent only when asked for
            body["ignore_eos"] = True
        return body

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
        return headers

    async def _run(self, request: UpstreamRequest, prompt: Prompt, params: GenerationParams, deadline: float) -> None:
        timeout = httpx.Timeout(None, connect=self.config.connect_timeout_s)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                async with httpx.AsyncClient(
                    timeout=timeout, verify=self._ssl, trust_env=self.config.use_proxy
                ) as client:
                    url = self.config.url.rstrip("/") + "/chat/completions"
                    body = self.body(prompt, params)
                    async with client.stream("POST", url, json=body, headers=self.headers()) as response:
                        await self._read(request, response)
        except asyncio.CancelledError:  # as an aborted row in-process: `events` says when the client left
            request.finish(request.finish_reason or "stop")
            raise
        except (TimeoutError, httpx.TimeoutException):
            request.finish(request.finish_reason or "timeout")
        except UpstreamError as exc:
            self._fail(request, exc.code, exc.status)
        except httpx.TransportError as exc:
            code = "upstream_disconnected" if request.received else "upstream_unreachable"
            self._fail(request, code, None, type(exc).__name__)
        except Exception as exc:  # whatever the upstream sent, the front answers cleanly
            self._fail(request, "upstream_malformed", None, type(exc).__name__)
        else:
            request.finish(request.finish_reason or "stop")

    def _fail(self, request: UpstreamRequest, code: str, status: int | None, error_type: str | None = None) -> None:
        fields = {"upstream_error": code, "upstream_status": status, "error_type": error_type}
        log.warning("upstream generation failed", extra={k: v for k, v in fields.items() if v is not None})
        if status in {408, 504}:
            request.finish("timeout")
        else:
            request.finish("error", f"{code}:{status}" if status else code)

    async def _read(self, request: UpstreamRequest, response: httpx.Response) -> None:
        if response.status_code != 200:
            await _drain(response)
            raise UpstreamError("upstream_refused", response.status_code)
        kind = response.headers.get("content-type", "")
        encoding = response.headers.get("content-encoding", "identity")
        if not kind.startswith("text/event-stream") or encoding not in {"identity", ""}:
            raise UpstreamError("upstream_malformed")
        lines = LineReader(self.config.max_bytes)
        async for raw in response.aiter_raw():
            request.received = True
            for line in lines.feed(raw):
                if request.event(line):
                    return
        for line in lines.end():
            if request.event(line):
                return
        if request.finish_reason is None:
            raise UpstreamError("upstream_disconnected")


class UpstreamRequest:
    """One upstream generation: what `events` needs of it (`streaming.Running`) and the stream's state."""

    def __init__(self, prompt_tokens: int, sink: Sink) -> None:
        self.prompt_tokens, self.sink = prompt_tokens, sink
        self.task: asyncio.Task[None] | None = None
        self.received = False
        self.pieces = 0
        self.finish_reason: FinishReason | None = None
        self.usage: tuple[int, int] | None = None
        self.outcome: Outcome | None = None

    def cancel(self) -> None:
        task = self.task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop has closed
                task.get_loop().call_soon_threadsafe(task.cancel)

    def event(self, line: str) -> bool:
        """Handle one line of the event stream; whether the stream is complete (`[DONE]`)."""
        if not line.startswith("data:"):
            return False  # comments, `event:`, `id:` and blank lines carry nothing here
        data = line[5:].strip()
        if data == "[DONE]":
            if self.finish_reason is None:
                raise UpstreamError("upstream_disconnected")
            return True
        try:
            payload = json.loads(data)
        except ValueError:
            raise UpstreamError("upstream_malformed") from None
        if not isinstance(payload, dict):
            raise UpstreamError("upstream_malformed")
        if "error" in payload:
            raise UpstreamError("upstream_error")
        self._usage(payload.get("usage"))
        self._choices(payload.get("choices"))
        return False

    def _choices(self, choices: object) -> None:
        if not isinstance(choices, list) or len(choices) > 1:
            raise UpstreamError("upstream_malformed")
        if not choices:
            return  # the usage chunk
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or not isinstance(delta, dict):
            raise UpstreamError("upstream_malformed")
        content, reason = delta.get("content"), choice.get("finish_reason")
        if not isinstance(content, str | None) or not isinstance(reason, str | None):
            raise UpstreamError("upstream_malformed")
        if content and self.finish_reason is None:
            self.pieces += 1
            self.sink(content)
        if reason is not None:
            self.finish_reason = "length" if reason == "length" else "stop"

    def _usage(self, usage: object) -> None:
        if usage is None:
            return
        if not isinstance(usage, dict):
            raise UpstreamError("upstream_malformed")
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if all(type(n) is int and 0 <= n < 1 << 31 for n in (prompt, completion)):
            self.usage = (int(prompt), int(completion))  # type: ignore[arg-type]  # checked just above

    def finish(self, reason: FinishReason, error: str | None = None) -> None:
        """Send the outcome (once): the upstream's token counts when it sent them, else the local
        prompt count and the number of text pieces."""
        if self.outcome is not None:
            return
        prompt, completion = self.usage or (self.prompt_tokens, self.pieces)
        self.outcome = Outcome(prompt, completion, reason, error)
        self.sink(self.outcome)


class LineReader:
    """Splits raw bytes into text lines, refusing a line over `MAX_LINE_BYTES` or more than `max_bytes` in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.total, self.buffer = max_bytes, 0, b""

    def feed(self, data: bytes) -> list[str]:
        self.total += len(data)
        if self.total > self.max_bytes:
            raise UpstreamError("upstream_too_large")
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > MAX_LINE_BYTES or any(len(line) > MAX_LINE_BYTES for line in lines):
            raise UpstreamError("upstream_too_large")
        return [_decode(line) for line in lines]

    def end(self) -> list[str]:
        rest, self.buffer = self.buffer, b""
        return [_decode(rest)] if rest else []


def _decode(line: bytes) -> str:
    try:
        return line.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise UpstreamError("upstream_malformed") from None


async def _drain(response: httpx.Response) -> None:
    """Read at most `ERROR_BODY_BYTES` of an error answer (never logged: it is the upstream's text)."""
    read = 0
    async for raw in response.aiter_raw():
        read += len(raw)
        if read >= ERROR_BODY_BYTES:
            break
