"""Chat with the demo model (local transformers, PEFT adapters unmerged) and an OpenAI-compatible server."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.chat.remote import Endpoint, EndpointPolicy
from services.chat.session import Answer, ChatEngine, collect
from services.chat.variant import Variant
from services.demo import DEMO_MODEL, DemoWorkspace, init_demo
from services.errors import UntrustedEndpointError
from services.evals.runner import run_suite
from services.evals.suite import parse_suite
from services.progress import CancelToken
from tests.chat_support import make_adapter
from tests.fakeopenai import FakeOpenAI

CANARY = "sk-CANARY-7f3c9a1e5b2d4c6e8f0a1b2c3d4e5f60"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    root = tmp_path_factory.mktemp("demo")
    return init_demo(cache_dir=root / "hub", data_dir=root / "data")


@pytest.fixture(scope="module")
def adapters(demo: DemoWorkspace, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("adapters")
    model = Path(demo.model_path)
    return make_adapter(model, root / "one", seed=1), make_adapter(model, root / "two", seed=2)


@pytest.fixture(scope="module")
def engine(demo: DemoWorkspace) -> Iterator[ChatEngine]:
    engine = ChatEngine(cache_dir=Path(demo.cache_dir))
    yield engine
    engine.close()


def local(name: str = "base", **fields: object) -> Variant:
    return Variant.model_validate({"name": name, "model": DEMO_MODEL, "params": {"max_new_tokens": 16}, **fields})


def test_local_backend_streams_pieces_then_one_answer(engine: ChatEngine) -> None:
    items = list(engine.stream(local(system_prompt="Be brief."), "Which machine has the GPU?"))
    pieces, final = items[:-1], items[-1]
    assert len(pieces) > 1 and all(isinstance(p, str) and p for p in pieces)
    assert isinstance(final, Answer) and final.error is None
    assert final.text == "".join(pieces)  # type: ignore[arg-type]
    assert final.tokens == 16 and final.tokens_per_s > 0
    assert final.ttft_s is not None and 0 < final.ttft_s <= final.latency_s
    assert final.prompt == "<|system|>\nBe brief.</s>\n<|user|>\nWhich machine has the GPU?</s>\n<|assistant|>\n"


def test_greedy_answers_repeat_and_history_is_sent(engine: ChatEngine) -> None:
    first = collect(engine.stream(local(), "Reverse the order of the words."))
    again = collect(engine.stream(local(), "Reverse the order of the words."))
    assert first.text == again.text
    turn = collect(engine.stream(local(), "And now?", history=[("Hi", "Hello")]))
    assert "<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n<|user|>\nAnd now?" in turn.prompt


def test_base_and_adapters_share_one_loaded_base_and_answer_differently(
    demo: DemoWorkspace, adapters: tuple[Path, Path]
) -> None:
    engine = ChatEngine(cache_dir=Path(demo.cache_dir))
    one, two = (local(f"tuned{i}", adapter=str(p)) for i, p in enumerate(adapters))
    question = "How many words are there? gpu token model"
    base_before = collect(engine.stream(local(), question))
    tuned_one = collect(engine.stream(one, question))
    tuned_two = collect(engine.stream(two, question))
    base_after = collect(engine.stream(local(), question))  # the adapter is switched off again
    tuned_again = collect(engine.stream(one, question))
    assert all(a.error is None for a in (base_before, tuned_one, tuned_two, base_after, tuned_again))
    assert base_before.text == base_after.text
    assert tuned_one.text == tuned_again.text
    assert len({base_before.text, tuned_one.text, tuned_two.text}) == 3
    assert engine.models.base_loads == 1
    [loaded] = engine.models._loaded.values()
    assert len(loaded.adapters) == 2 and loaded.peft is not None
    engine.close()


def test_cancel_and_an_abandoned_stream_stop_generation(engine: ChatEngine) -> None:
    cancel = CancelToken()
    variant = local(params={"max_new_tokens": 200})
    items = []
    for item in engine.stream(variant, "Tell me everything.", cancel=cancel):
        items.append(item)
        cancel.cancel()
    final = items[-1]
    assert isinstance(final, Answer) and final.error is None and final.tokens < 200
    stream = engine.stream(variant, "Tell me everything.")
    next(stream)
    stream.close()  # leaves early: generation stops and the model is free for the next question
    done = threading.Event()
    threading.Thread(target=lambda: (collect(engine.stream(local(), "hi")), done.set()), daemon=True).start()
    assert done.wait(60)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"model": "nobody/missing"}, "is not in the HF cache"),
        ({"adapter": "/nonexistent/adapter"}, "has no adapter_config.json"),
        ({"rag": {"collection": "docs"}}, "no Chroma client is configured"),
    ],
)
def test_failures_become_answer_errors(engine: ChatEngine, fields: dict[str, object], expected: str) -> None:
    answer = collect(engine.stream(local(**fields), "hi"))
    assert answer.error is not None and expected in answer.error and answer.text == ""


def test_4bit_without_cuda_is_a_clear_error(engine: ChatEngine) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    answer = collect(engine.stream(local(load_4bit=True), "hi"))
    assert answer.error is not None and "needs a CUDA GPU" in answer.error


def remote(server: FakeOpenAI, **fields: object) -> Variant:
    data = {"name": "remote", "backend": "openai", "endpoint": server.endpoint, "model": "team-chat"}
    return Variant.model_validate({**data, "params": {"max_new_tokens": 32, "seed": 7}, **fields})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, engine: ChatEngine) -> Iterator[FakeOpenAI]:
    """The fake endpoint, trusted by `engine` (as the user's [chat.endpoints] would) with these key variables."""
    monkeypatch.setenv("TEAM_API_KEY", CANARY)
    with FakeOpenAI(key=CANARY) as fake:
        trusted = tuple(Endpoint(k.lower(), fake.endpoint, k) for k in ("TEAM_API_KEY", "WRONG_KEY", "UNSET_KEY_VAR"))
        monkeypatch.setattr(engine, "endpoints", EndpointPolicy(trusted))
        yield fake


def test_openai_backend_streams_from_a_local_server(server: FakeOpenAI, engine: ChatEngine) -> None:
    items = list(
        engine.stream(remote(server, api_key_env="TEAM_API_KEY", system_prompt="Be brief."), "Where is the GPU?")
    )
    final = items[-1]
    assert isinstance(final, Answer) and final.error is None
    assert [p for p in items[:-1]] == ["The ", "development ", "server ", "has ", "the ", "GPU."]
    assert final.text == server.reply and final.tokens == 6 and final.ttft_s is not None
    [request] = server.requests
    assert request["auth"] == f"Bearer {CANARY}"
    body = request["body"]
    assert body["model"] == "team-chat" and body["stream"] is True and body["max_tokens"] == 32
    assert body["seed"] == 7 and body["temperature"] == 0.0
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is the GPU?"},
    ]
    assert '"content": "Where is the GPU?"' in final.prompt and CANARY not in final.prompt


def test_the_api_key_never_reaches_answers_or_errors(
    server: FakeOpenAI, engine: ChatEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.leaky = True  # the server echoes the Authorization header in its error body
    monkeypatch.setenv("WRONG_KEY", CANARY + "-wrong")
    answer = collect(engine.stream(remote(server, api_key_env="WRONG_KEY"), "hi"))
    assert answer.error is not None and "HTTP 403" in answer.error
    assert server.requests[-1]["auth"] == f"Bearer {CANARY}-wrong"  # it was sent...
    assert CANARY not in repr(answer)  # ...and is nowhere in what the user sees
    missing = collect(engine.stream(remote(server, api_key_env="UNSET_KEY_VAR"), "hi"))
    assert missing.error is not None and "UNSET_KEY_VAR is not set" in missing.error


def test_endpoint_down_and_timeout_are_answer_errors(server: FakeOpenAI, engine: ChatEngine) -> None:
    down = collect(engine.stream(remote(server, endpoint="http://127.0.0.1:9/v1"), "hi"))
    assert down.error is not None and "cannot connect" in down.error and "127.0.0.1:9" in down.error
    server.delay_s = 2.0
    slow = collect(engine.stream(remote(server, api_key_env="TEAM_API_KEY", timeout_s=0.3), "hi"))
    assert slow.error is not None and "timed out after 0.3 s" in slow.error


def test_a_suite_run_goes_on_when_an_endpoint_is_down(server: FakeOpenAI, engine: ChatEngine, tmp_path: Path) -> None:
    text = f"""
variants:
  - {{name: local, model: {DEMO_MODEL}, params: {{max_new_tokens: 4}}}}
  - {{name: down, backend: openai, endpoint: "http://127.0.0.1:9/v1"}}
  - {{name: remote, backend: openai, endpoint: "{server.endpoint}", api_key_env: TEAM_API_KEY}}
cases:
  - name: gpu
    question: Where is the GPU?
    asserts: [{{type: not-contains, value: PWNED}}]
  - name: second
    question: And the registry?
"""
    seen = []
    run = run_suite(parse_suite(text, tmp_path / "s.yaml"), engine=engine, on_result=seen.append)
    cells = {(r.case, r.variant): r for r in run.results}
    assert len(seen) == len(run.results) == 6
    assert cells["gpu", "local"].passed and cells["gpu", "remote"].passed and cells["second", "remote"].passed
    down = cells["second", "down"]
    assert not down.passed and down.failures[0].startswith("error: endpoint http://127.0.0.1:9/v1: cannot connect")
    assert len(run.inputs["variants"]["local"]["revision"]) == 40  # the cache commit of the model
    assert CANARY not in repr(run)


def test_a_suite_is_refused_before_any_request_when_a_key_would_leave(
    server: FakeOpenAI, demo: DemoWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CANARY)
    text = f"""
variants:
  - {{name: fine, backend: openai, endpoint: "{server.endpoint}"}}
  - {{name: evil, backend: openai, endpoint: "{server.endpoint}", api_key_env: AZURE_CLIENT_SECRET}}
cases:
  - {{name: gpu, question: "Where is the GPU?"}}
"""
    untrusting = ChatEngine(cache_dir=Path(demo.cache_dir))  # the default trusts no endpoint with a key
    with pytest.raises(UntrustedEndpointError) as err:
        run_suite(parse_suite(text, tmp_path / "s.yaml"), engine=untrusting)
    assert "suite variant 'evil' asks to send $AZURE_CLIENT_SECRET to " in err.value.message
    assert server.requests == [] and err.value.exit_code == 2
    answer = collect(untrusting.stream(remote(server, api_key_env="AZURE_CLIENT_SECRET"), "hi"))
    assert answer.error is not None and "asks to send $AZURE_CLIENT_SECRET" in answer.error
    assert server.requests == []
    keyless = collect(untrusting.stream(remote(server), "hi"))  # no key: nothing secret leaves
    assert "HTTP 403" in (keyless.error or "") and server.requests[0]["auth"] == "Bearer not-needed"
