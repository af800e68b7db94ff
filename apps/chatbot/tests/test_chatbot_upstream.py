"""The `openai` engine: the chatbot in front of a real upstream (the chatbot itself, `transformers`
engine, in a second process), and in front of upstreams that answer garbage, die or hang."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from appkit.testing import wait_ready
from fastapi import FastAPI
from fastapi.testclient import TestClient

import upstream_support
from chatbot.app import Resources, create_app
from chatbot.engines import load_engine
from chatbot.settings import Settings
from chatbot_support import CANARY_KEY, ask
from upstream_support import (
    GOOD,
    SSE_HEAD,
    UPSTREAM_KEY,
    UPSTREAM_MODEL,
    ScriptedUpstream,
    chatbot_process,
    free_port,
    piece,
    sse,
)

AUTH = {"Authorization": f"Bearer {CANARY_KEY}"}
QUESTION = "How much GPU memory does a 7-billion-parameter model need in 4-bit?"
GARBAGE = "garbage-7c1e"


@pytest.fixture(scope="module")
def upstream_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("upstream-secret") / "key"
    path.write_text(f"# the upstream's key\n{UPSTREAM_KEY}\n")
    return path


@pytest.fixture(scope="module")
def upstream_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upstream-log") / "upstream.log"


@pytest.fixture(scope="module")
def real_upstream(demo_model: Path, demo_adapter: Path, upstream_key_file: Path, upstream_log: Path) -> Iterator[str]:
    """The chatbot with the `transformers` engine, no retrieval and no system prompt of its own, in
    its own process: what the front's `openai` engine talks to. Its `/v1` URL."""
    env = {
        "CHATBOT_ENGINE": "transformers",
        "CHATBOT_MODEL_PATH": str(demo_model),
        "CHATBOT_ADAPTER_PATH": str(demo_adapter),
        "CHATBOT_API_KEYS_FILE": str(upstream_key_file),
        "CHATBOT_SERVED_MODEL_NAME": UPSTREAM_MODEL,
        "CHATBOT_SYSTEM_PROMPT": "",
    }
    with chatbot_process(env, upstream_log) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def front(
    make_settings: Callable[..., Settings], loaded: tuple[Resources, str, str], upstream_key_file: Path
) -> Callable[..., FastAPI]:
    """`front(url, **settings)`: the chatbot with `CHATBOT_ENGINE=openai` pointed at `url`, its engine
    loaded by the real loader, retrieval on the shared demo collection."""

    def make(url: str, **overrides: Any) -> FastAPI:
        values = {
            "engine": "openai",
            "upstream_url": url,
            "upstream_model": UPSTREAM_MODEL,
            "upstream_api_key_file": upstream_key_file,
        }
        settings = make_settings(**(values | overrides))
        return create_app(settings, loader=lambda s: Resources(load_engine(s), loaded[0].retriever))

    return make


@pytest.fixture(scope="module")
def real_front(front: Callable[..., FastAPI], real_upstream: str) -> Iterator[TestClient]:
    with TestClient(front(real_upstream), headers=AUTH) as client:
        wait_ready(client)
        yield client


def streamed(client: TestClient, body: dict[str, Any]) -> tuple[int, list[Any]]:
    """The status and the events of a streamed answer (`[DONE]` as the string)."""
    with client.stream("POST", "/v1/chat/completions", json=body | {"stream": True}) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        events = [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]
        return response.status_code, events


def test_answers_come_from_the_upstream_with_the_fronts_sources(
    real_front: TestClient, client: TestClient, upstream_log: Path, log_lines: io.StringIO
) -> None:
    answer = real_front.post("/v1/chat/completions", json=ask(QUESTION, max_tokens=8))
    local = client.post("/v1/chat/completions", json=ask(QUESTION, max_tokens=8))
    status, events = streamed(real_front, ask(QUESTION, max_tokens=8, stream_options={"include_usage": True}))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "chatbot"
    assert body["sources"] and body["sources"][0].endswith("06-gpu-budget.txt")
    assert body["sources"] == local.json()["sources"]
    # the same model, adapter, prompt and greedy decoding, in the other process
    assert body["choices"][0]["message"]["content"] == local.json()["choices"][0]["message"]["content"]
    assert body["usage"]["prompt_tokens"] == local.json()["usage"]["prompt_tokens"] > 0
    assert status == 200
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e.get("choices"))
    assert text == body["choices"][0]["message"]["content"]
    assert events[-2]["usage"]["completion_tokens"] == body["usage"]["completion_tokens"]
    seen = answer.text + json.dumps(events) + log_lines.getvalue() + upstream_log.read_text()
    assert UPSTREAM_KEY not in seen


def test_without_a_tokenizer_the_context_is_sent_unbudgeted(front: Callable[..., FastAPI], real_upstream: str) -> None:
    with TestClient(front(real_upstream, model_path=None, adapter_path=None), headers=AUTH) as client:
        wait_ready(client)
        answer = client.post("/v1/chat/completions", json=ask(QUESTION, max_tokens=4))

    assert answer.status_code == 200, answer.text
    assert answer.json()["sources"] and not answer.json()["context_trimmed"]


def test_a_wrong_upstream_key_is_a_clean_502(
    front: Callable[..., FastAPI], real_upstream: str, tmp_path: Path, log_lines: io.StringIO
) -> None:
    wrong = tmp_path / "key"
    wrong.write_text("sk-not-the-upstreams-key\n")
    with TestClient(front(real_upstream, upstream_api_key_file=wrong), headers=AUTH) as client:
        wait_ready(client)
        answer = client.post("/v1/chat/completions", json=ask("hi", max_tokens=2))

    assert answer.status_code == 502
    assert answer.json()["error"] == {
        "message": "the upstream model server refused the request (HTTP 403)",
        "type": "upstream_error",
        "code": "upstream_failed",
        "param": None,
    }
    assert "sk-not-the-upstreams-key" not in answer.text + log_lines.getvalue()


def test_sampling_settings_and_the_key_are_passed_on(front: Callable[..., FastAPI]) -> None:
    upstream = ScriptedUpstream(GOOD)
    fields = {"max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 3, "stop": ["END"], "ignore_eos": True}
    with TestClient(front(upstream.url, rag_top_k=1), headers=AUTH) as client:
        wait_ready(client)
        answer = client.post("/v1/chat/completions", json=ask(QUESTION, **fields))
    upstream.close()

    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Roll back."
    head, sent = upstream.requests[0]
    assert head.startswith(b"POST /v1/chat/completions ")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent["model"] == UPSTREAM_MODEL and sent["stream"] is True
    assert {k: sent[k] for k in fields} == fields
    assert "<<<REFERENCE" in sent["messages"][-1]["content"]  # the front's RAG prompt goes upstream


def _dies_mid_stream(conn: Any) -> None:
    conn.sendall(SSE_HEAD + sse(piece("Half an ")))
    conn.shutdown(2)


BROKEN = {
    "not json": (SSE_HEAD + b"data: {" + GARBAGE.encode() + b"\n\n", "malformed"),
    "wrong types": (SSE_HEAD + sse({"choices": [{"delta": {"content": 5}, "finish_reason": None}]}), "malformed"),
    "a list": (SSE_HEAD + sse([GARBAGE]), "malformed"),
    "not a stream": (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{}", "malformed"),
    "an error event": (SSE_HEAD + sse({"error": {"message": GARBAGE}}), "reported an error"),
    "an endless line": (SSE_HEAD + b"data: " + b"x" * 3_000_000, "too large"),
    "a 500": (b"HTTP/1.1 500 Oops\r\ncontent-length: 12\r\n\r\n" + GARBAGE.encode() + b"!!!!!", "(HTTP 500)"),
    "not http": (GARBAGE.encode() * 100, "ended its answer early|could not be reached"),
    "no done": (SSE_HEAD + sse(piece("Half")), "ended its answer early"),
    "dies mid-stream": (_dies_mid_stream, "ended its answer early"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_upstream_is_a_clean_502_and_the_front_stays_up(
    front: Callable[..., FastAPI], case: str, log_lines: io.StringIO
) -> None:
    reply, expected = BROKEN[case]
    upstream = ScriptedUpstream(reply)
    with TestClient(front(upstream.url, upstream_max_bytes=2_000_000), headers=AUTH) as client:
        wait_ready(client)
        answer = client.post("/v1/chat/completions", json=ask("hi"))
        status, events = streamed(client, ask("hi"))
        upstream.reply = GOOD
        after = client.post("/v1/chat/completions", json=ask("hi"))
    upstream.close()

    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["type"] == "upstream_error" and any(e in error["message"] for e in expected.split("|"))
    if status == 200:  # text came first: the error arrives as an event before [DONE]
        assert events[-2]["error"]["code"] == "upstream_failed" and events[-1] == "[DONE]"
    else:
        assert status == 502
    assert GARBAGE not in answer.text + json.dumps(events) + log_lines.getvalue()
    assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"] == "Roll back."


def test_an_unreachable_upstream_is_a_502(front: Callable[..., FastAPI]) -> None:
    with TestClient(front(f"http://127.0.0.1:{free_port()}/v1"), headers=AUTH) as client:
        wait_ready(client)
        answer = client.post("/v1/chat/completions", json=ask("hi"))

    assert answer.status_code == 502
    assert answer.json()["error"]["message"] == "the upstream model server could not be reached"


def test_a_client_that_leaves_cancels_the_upstream_request(front: Callable[..., FastAPI]) -> None:
    upstream = ScriptedUpstream(b"")
    upstream.reply = upstream.hold
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(front(upstream.url), port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        upstream_support.wait_ready(url)
        with (
            httpx.Client(base_url=url, headers=AUTH, trust_env=False, timeout=60) as http,
            http.stream("POST", "/v1/chat/completions", json=ask("hi", stream=True)) as response,
        ):
            lines = response.iter_lines()
            first = [next(lines) for _ in range(4)]
            assert any("Hold on" in line for line in first)
            assert not upstream.closed.is_set()
        # the client has hung up: the front cancels its upstream request, which closes that connection
        assert upstream.closed.wait(30)
        assert httpx.get(f"{url}/healthz", trust_env=False).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        upstream.close()
