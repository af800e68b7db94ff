"""The OpenAI-compatible API: completions (whole and streamed), models, errors, the official client."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from chatbot_support import CANARY_KEY, ask


def local_openai(server: str, key: str) -> openai.OpenAI:
    """The official client for the test server (no proxy from the environment, no retries)."""
    import httpx2

    return openai.OpenAI(
        base_url=f"{server}/v1", api_key=key, max_retries=0, http_client=httpx2.Client(trust_env=False)
    )


def sse_events(client: TestClient, body: dict[str, Any]) -> list[str]:
    """The `data:` payloads of a streamed answer, in order."""
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    return [line.removeprefix("data: ") for line in lines]


def test_models_lists_the_served_model(client: TestClient) -> None:
    listing = client.get("/v1/models").json()

    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["chatbot"]
    assert client.get("/v1/models/chatbot").json()["id"] == "chatbot"


def test_completion_has_text_usage_and_retrieved_sources(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json=ask("How is a release rolled back?", max_tokens=8))

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert len(body["sources"]) == 1
    assert body["sources"][0].endswith((".md", ".txt"))
    assert response.headers["x-request-id"]


def test_stream_sends_role_then_deltas_then_finish_then_done(client: TestClient) -> None:
    events = sse_events(client, ask("What is the GPU budget?", stream=True, max_tokens=6))

    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_stream_and_whole_answers_agree_and_usage_comes_last(client: TestClient) -> None:
    whole = client.post("/v1/chat/completions", json=ask("Who may read the dataset?", max_tokens=6)).json()
    body = ask("Who may read the dataset?", stream=True, max_tokens=6, stream_options={"include_usage": True})
    chunks = [json.loads(e) for e in sse_events(client, body)[:-1]]

    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole["usage"]


def test_stop_sequence_cuts_the_answer(client: TestClient) -> None:
    full = client.post("/v1/chat/completions", json=ask("Describe the platform.", max_tokens=12)).json()
    text = full["choices"][0]["message"]["content"]
    assert text, "greedy decoding of the demo model produces some text"
    stop = text[len(text) // 2 :][:2]

    cut = client.post("/v1/chat/completions", json=ask("Describe the platform.", max_tokens=12, stop=[stop])).json()

    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    # Not streamed, but with a stop sequence the text is watched as it comes: generation ends early.
    assert cut["usage"]["completion_tokens"] < full["usage"]["completion_tokens"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (ask("hi", model="gpt-4o"), 404, "model_not_found"),
        (ask("hi", n=2), 400, "invalid_request"),
        (ask("hi", max_tokens=100_000), 400, None),
        ({"model": "chatbot", "messages": [{"role": "system", "content": "no user"}]}, 400, "invalid_request"),
        ({"model": "chatbot"}, 400, "invalid_request"),
    ],
)
def test_bad_requests_get_openai_shaped_errors(
    client: TestClient, body: dict[str, Any], status: int, code: str
) -> None:
    response = client.post("/v1/chat/completions", json=body)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"]
    assert error["code"] == code


def test_prompt_longer_than_the_model_reads_is_400(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json=ask("token " * 600))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_official_openai_client_chats_and_streams(server: str) -> None:
    api = local_openai(server, CANARY_KEY)

    assert [m.id for m in api.models.list()] == ["chatbot"]
    whole = api.chat.completions.create(
        model="chatbot", messages=[{"role": "user", "content": "How do I deploy?"}], max_tokens=5
    )
    assert whole.choices[0].finish_reason in {"stop", "length"}
    assert whole.usage is not None and whole.usage.completion_tokens > 0
    stream = api.chat.completions.create(
        model="chatbot",
        messages=[{"role": "user", "content": "How do I deploy?"}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_official_openai_client_sees_auth_and_model_errors(server: str) -> None:
    wrong = local_openai(server, "sk-wrong-key-000000000000")
    right = local_openai(server, CANARY_KEY)

    with pytest.raises(openai.PermissionDeniedError):
        wrong.models.list()
    with pytest.raises(openai.NotFoundError):
        right.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
